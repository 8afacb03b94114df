/**
 * Two replicas of one service (two agent processes, same owner, same name):
 * new sessions spread across them by load; kill -9 the replica serving an
 * open page and the page goes on through the other; SIGTERM drains a
 * replica (no new sessions, the open page keeps its tunnel until it closes).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { connectTunnel, type TunnelClient } from '@peerway/node-agent/client';
import { Stack, screenshot, type Proc } from '../support/stack';
import { startReplicaApp } from '../fixtures/replica-app';

const stack = new Stack();
let token = '';
const apps: Record<string, number> = {};
const replicas: Record<string, Proc & { home: string }> = {};
beforeAll(async () => {
  for (const name of ['r1', 'r2']) {
    const app = await startReplicaApp(name);
    apps[name] = app.port;
    stack.onStop(() => app.close());
  }
  await stack.start();
  token = (await stack.user()).token;
  for (const name of ['r1', 'r2']) replicas[name] = await startReplica(name);
});
afterAll(() => stack.stop());

function startReplica(name: string, home?: string) {
  return stack.agent(token, [`web=127.0.0.1:${apps[name]},public`], home, [
    '--name',
    name,
    '--drain-timeout',
    '60',
  ]);
}

/** Which replica the page's last answer came from. */
async function servedBy(page: Page): Promise<string> {
  const text = (await Stack.app(page).locator('#now').textContent()) ?? '';
  return text.split(':')[0]!;
}

async function openPage(): Promise<Page> {
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('web', '/'));
  await expect.poll(() => servedBy(page), { timeout: 20_000 }).toMatch(/^r[12]$/);
  return page;
}

it('spreads new sessions across the replicas by load', async () => {
  const clients: TunnelClient[] = [];
  try {
    // Four waves of five concurrent sessions.
    for (let wave = 0; wave < 4; wave++) {
      clients.push(
        ...(await Promise.all(
          Array.from({ length: 5 }, () =>
            connectTunnel({ serverUrl: stack.url, service: 'web', timeoutMs: 20_000 }),
          ),
        )),
      );
    }
    const by: Record<string, number> = {};
    for (const c of clients) {
      const res = await c.request('GET', '/whoami');
      const who = await new Response(res.body).text();
      by[who] = (by[who] ?? 0) + 1;
    }
    console.log(`[replicas] 20 sessions: ${JSON.stringify(by)}`);
    expect((by.r1 ?? 0) + (by.r2 ?? 0)).toBe(20);
    expect(by.r1).toBeGreaterThanOrEqual(6);
    expect(by.r2).toBeGreaterThanOrEqual(6);
  } finally {
    for (const c of clients) c.close();
  }
}, 120_000);

it('kill -9 of the replica serving an open page: the page goes on through the other', async () => {
  const page = await openPage();
  const first = await servedBy(page);
  const other = first === 'r1' ? 'r2' : 'r1';
  await replicas[first]!.stop('SIGKILL');
  const killedAt = Date.now();
  await expect.poll(() => servedBy(page), { timeout: 20_000, interval: 50 }).toBe(other);
  // The first answer from the other replica, by the page's own clock.
  const answers = (await Stack.app(page)
    .locator('body')
    .evaluate(
      () => (window as unknown as { answers: { at: number; text: string }[] }).answers,
    )) as {
    at: number;
    text: string;
  }[];
  const firstOther = answers.find((a) => a.at >= killedAt && a.text.startsWith(`${other}:`));
  expect(firstOther).toBeDefined();
  const errors = Number(await Stack.app(page).locator('#errors').textContent());
  console.log(
    `[replicas] kill -9 of ${first}: next successful request through ${other} after ${firstOther!.at - killedAt} ms (${errors} failed requests in the page)`,
  );
  await screenshot(page, 'replica-failover');
  await page.close();
  replicas[first] = await startReplica(first, replicas[first]!.home);
}, 120_000);

it('SIGTERM drains a replica: no new sessions there, the open page keeps it until it closes', async () => {
  const page = await openPage();
  const draining = await servedBy(page);
  const other = draining === 'r1' ? 'r2' : 'r1';
  const agent = replicas[draining]!;
  const from = agent.out.length;
  agent.child.kill('SIGTERM');
  await agent.waitFor(/Draining: no new sessions; 1 open/, 10_000, from);
  // New pages go to the other replica, several times over.
  for (let i = 0; i < 3; i++) {
    const p = await openPage();
    expect(await servedBy(p)).toBe(other);
    await p.close();
  }
  // The open page still talks to the draining one.
  const before = await Stack.app(page).locator('#now').textContent();
  await expect
    .poll(() => Stack.app(page).locator('#now').textContent(), { timeout: 5000 })
    .not.toBe(before);
  expect(await servedBy(page)).toBe(draining);
  // Closing it ends the last session: the agent finishes draining and exits.
  await page.close();
  await agent.waitFor(/Drained\./, 20_000, from);
  await new Promise<void>((r) =>
    agent.child.exitCode !== null ? r() : agent.child.once('exit', () => r()),
  );
  expect(agent.child.exitCode).toBe(0);
}, 120_000);
