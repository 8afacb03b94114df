/**
 * Real page loads and WebSocket exchanges from Chromium behind one home
 * router to an agent behind another, with the connection type asserted from
 * the session's stats: direct through cone NATs, relayed through TURN over
 * UDP between symmetric NATs, and over TCP when the client's router drops UDP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { labAvailable } from '../netlab/lab';
import { LabStack } from '../netlab/stack';
import { screenshot } from '../support/stack';
import type { LabStackOptions } from '../netlab/stack';

const avail = labAvailable();
// Outside CI (not root, no ip netns) the lab is skipped with the reason; in CI it
// must run, so a machine that cannot build it fails instead of skipping.
if (!avail.ok && process.env.CI) throw new Error(`the NAT lab cannot run here: ${avail.why}`);
if (!avail.ok) console.warn(`[nat-matrix] skipped: ${avail.why}`);

let stack: LabStack | null = null;
afterEach(async () => {
  await stack?.stop();
  stack = null;
});

async function openChat(o: LabStackOptions, shot: string) {
  stack = new LabStack();
  await stack.start(o);
  const browser = await stack.launchBrowser();
  const page = await (await browser.newContext()).newPage();
  const started = Date.now();
  await page.goto(stack.serviceUrl('chat'));
  const app = page.frameLocator('#app');
  await expect.poll(() => app.locator('#state').textContent(), { timeout: 40_000 }).toBe('open');
  await app.locator('#text').fill('through the NATs');
  await app.locator('#send').click();
  await expect
    .poll(() => app.locator('#log li').allTextContents(), { timeout: 15_000 })
    .toContain('msg:through the NATs');
  console.log(`[nat-matrix] ${shot}: page and WebSocket working after ${Date.now() - started} ms`);
  await screenshot(page, shot);
  // both ends report again after ICE settles (6 s after open): read the final word
  await new Promise((r) => setTimeout(r, 7000));
  let session:
    { client: Record<string, string> | null; agent: Record<string, string> | null } | undefined;
  await expect
    .poll(() => (session = stack!.signalingStats().recent.find((s) => s.client && s.agent)), {
      timeout: 10_000,
    })
    .toBeTruthy();
  console.log(
    `[nat-matrix] ${shot}: client ${JSON.stringify(session!.client)} agent ${JSON.stringify(session!.agent)}`,
  );
  return Object.assign(session!, { page });
}

const relayed = (s: Record<string, string>) =>
  s.localCandidateType === 'relay' || s.remoteCandidateType === 'relay';

describe.skipIf(!avail.ok)('NAT matrix', () => {
  it('cone ⇄ cone connects directly (no relay)', async () => {
    const s = await openChat({ client: { nat: 'cone' }, node: { nat: 'cone' } }, 'nat-cone');
    // This used to pick the relay in ~2 of 3 runs: the browser's
    // server-reflexive candidate followed the offer within a millisecond, the
    // agent was still checking the session's token and dropped it, and
    // without it the agent never sent the packet that opens its own router.
    // Now the server holds candidates until the offer and the agent holds
    // them until the session is set up.
    expect(relayed(s.client!)).toBe(false);
    expect(relayed(s.agent!)).toBe(false);
    expect(s.client!.localCandidateType).toMatch(/^(host|srflx|prflx)$/);
    // the agent's default engine answered (auto: node-datachannel)
    expect(s.agent!.engine).toBe('node-datachannel');
  }, 120_000);

  it('symmetric ⇄ symmetric connects through TURN over UDP', async () => {
    const s = await openChat(
      { client: { nat: 'symmetric' }, node: { nat: 'symmetric' } },
      'nat-symmetric-relay',
    );
    expect(relayed(s.client!) || relayed(s.agent!)).toBe(true);
    const viaClient =
      s.client!.localCandidateType === 'relay' ? s.client!.relayProtocol : undefined;
    expect(viaClient ?? 'udp').toBe('udp');
  }, 120_000);

  it('a client whose router drops UDP connects through TURN over TCP', async () => {
    const s = await openChat(
      { client: { nat: 'cone', blockUdp: true }, node: { nat: 'cone' } },
      'nat-tcp-relay',
    );
    expect(s.client!.localCandidateType).toBe('relay');
    expect(s.client!.relayProtocol).toBe('tcp');
    // node-datachannel answered first and cannot take a relay over TCP: the
    // shell saw it had nothing else and asked again for werift
    expect(s.agent!.engine).toBe('werift');
    expect(stack!.signalingStats().recent.length).toBe(2);
    // The tab remembers: a reload asks for werift at once (one more session).
    const started = Date.now();
    await s.page.reload();
    await expect
      .poll(() => s.page.frameLocator('#app').locator('#state').textContent(), {
        timeout: 40_000,
      })
      .toBe('open');
    console.log(`[nat-matrix] nat-tcp-relay: reloaded, working after ${Date.now() - started} ms`);
    // Every session the reloaded page opened asked for werift. (Usually one;
    // a loaded CI run once saw two, so the count is logged, not asserted.)
    const after = stack!.signalingStats().recent.filter((r) => r.openedAt >= started);
    console.log(
      `[nat-matrix] nat-tcp-relay: the reload opened ${after.length} session(s): ${JSON.stringify(after.map((r) => ({ asked: r.askedEngine, answered: r.agent?.engine ?? null, failure: r.failure })))}`,
    );
    expect(after.length).toBeGreaterThan(0);
    expect(after.map((r) => r.askedEngine)).toEqual(after.map(() => 'werift'));
  }, 120_000);
});

describe.skipIf(!avail.ok)('NAT matrix: a broken relay', () => {
  async function brokenRelay(o: Partial<LabStackOptions>, shot: string) {
    stack = new LabStack();
    await stack.start({ client: { nat: 'symmetric' }, node: { nat: 'symmetric' }, ...o });
    const page = await (await (await stack.launchBrowser()).newContext()).newPage();
    const started = Date.now();
    await page.goto(stack.serviceUrl('chat'));
    await expect
      .poll(() => page.locator('#status').getAttribute('data-state'), { timeout: 30_000 })
      .toBe('error');
    const elapsed = Date.now() - started;
    const text = await page.locator('#status p').textContent();
    console.log(`[nat-matrix] ${shot}: "${text}" after ${elapsed} ms`);
    await screenshot(page, shot);
    return { text: text ?? '', elapsed };
  }

  it('TURN with a wrong secret: a clear error within seconds', async () => {
    const r = await brokenRelay({ wrongTurnSecret: true }, 'nat-turn-wrong-secret');
    expect(r.text).toMatch(/relay \(TURN\) refused our credentials/);
    expect(r.elapsed).toBeLessThan(15_000);
  }, 120_000);

  it('TURN down: a clear error within seconds', async () => {
    const r = await brokenRelay({ noTurn: true }, 'nat-turn-down');
    expect(r.text).toMatch(/relay \(TURN\) is unreachable/);
    expect(r.elapsed).toBeLessThan(15_000);
  }, 120_000);
});
