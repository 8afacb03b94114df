/**
 * The restart policy's failure counts come from the store: a replica that
 * failed twice on a node (restarted twice) and fails a third time after
 * the server restarted on the same data directory is moved to another
 * node, as it would have been without the restart.
 */
import { afterAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity } from '@peerway/protocol/node';
import { parseConfig } from '../src/config';
import { startPeerwayServer, type PeerwayServer } from '../src/server';
import { api, makeUser } from './helpers';
import { ClusterAgent, spec, uniqueName, until } from './cluster-fixtures';

const dir = mkdtempSync(join(tmpdir(), 'pw-failures-'));
const open: { agents: ClusterAgent[]; servers: PeerwayServer[] } = { agents: [], servers: [] };
afterAll(async () => {
  for (const a of open.agents) a.close();
  for (const s of open.servers) await s.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<PeerwayServer> {
  const s = await startPeerwayServer(
    parseConfig({ port: 0, dataDir: dir, rescheduleAfter: '30s' }),
  );
  open.servers.push(s);
  return s;
}

function agentOn(server: PeerwayServer, identity = generateIdentity()) {
  const a = new ClusterAgent(server, identity);
  open.agents.push(a);
  return a;
}

it('counts failures on a node across a server restart: the third one moves the replica', async () => {
  let server = await start();
  const { token } = await makeUser(server);
  const nodeA = generateIdentity();
  let a = agentOn(server, nodeA);
  await a.join(token);
  const name = uniqueName();
  expect((await api(server, 'POST', '/api/deployments', { token, body: spec(name) })).status).toBe(
    201,
  );

  // two failures on node A: each restarted there (after 1 s, then 2 s)
  let [cur] = await a.setWhere((l) => l.length === 1);
  for (const how of ['failed', 'exited'] as const) {
    a.status(cur!.id, how, { reason: 'boom', ...(how === 'exited' ? { exitCode: 1 } : {}) });
    const was = cur!.id;
    [cur] = await a.setWhere((l) => l.length === 1 && l[0]!.id !== was);
  }

  // the server restarts on the same store; node A comes back, and node B appears
  a.close();
  await server.close();
  server = await start();
  a = agentOn(server, nodeA);
  expect((await a.join(token)).map((x) => x.id)).toEqual([cur!.id]);
  const b = agentOn(server);
  await b.join(token);

  // the third failure on A: moved to B, not restarted on A
  a.status(cur!.id, 'failed', { reason: 'boom' });
  const [moved] = await b.setWhere((l) => l.length === 1, 15_000);
  expect(moved!.deployment).toBe(name);
  const d = await until(async () => {
    const j = (await api(server, 'GET', `/api/deployments/${name}`, { token })).json;
    return j.events.some((e: any) => e.kind === 'moved') && j;
  }, 'the moved event');
  expect(d.events.filter((e: any) => e.kind === 'restarted')).toHaveLength(2);
  expect(d.events.find((e: any) => e.kind === 'moved').message).toContain(
    `replica ${cur!.id} failed repeatedly on node ${nodeA.shortId}`,
  );
  const run = d.replicas.filter((r: any) => r.desired === 'run');
  expect(run.map((r: any) => r.node)).toEqual([b.identity.shortId]);
}, 60_000);
