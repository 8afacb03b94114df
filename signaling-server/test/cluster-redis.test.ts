/**
 * Deployments with two server instances sharing a real redis-server: the
 * API on one instance, the agents on the other or on both. A node's set
 * reaches its agent through the instance that holds it; both instances'
 * reconciler loops run at once, and a lost node's replica is placed once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, makeUser, startRedis, withServer } from './helpers';
import { ClusterAgent, spec, uniqueName, until } from './cluster-fixtures';
import type { PeerwayServer } from '../src/server';

let redis: Awaited<ReturnType<typeof startRedis>>;
let a: Awaited<ReturnType<typeof withServer>>;
let b: Awaited<ReturnType<typeof withServer>>;
let A: PeerwayServer;
let B: PeerwayServer;
const publicUrl = 'http://gw.test:8080';

beforeAll(async () => {
  redis = await startRedis();
  a = await withServer({ redisUrl: redis.url(5), publicUrl, rescheduleAfter: '500ms' });
  b = await withServer({ redisUrl: redis.url(5), publicUrl, rescheduleAfter: '500ms' });
  A = a.server;
  B = b.server;
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await redis?.stop();
});

describe('deployments across two instances', () => {
  it('sends the set through the instance holding the agent, and reschedules a lost node once', async () => {
    const { user, token } = await makeUser(A);
    const onB = new ClusterAgent(B);
    expect(await onB.join(token)).toEqual([]);
    // instance A hears of the agent on B
    await until(() => A.signaling.presenceView.isOnline(onB.identity.nodeId), 'A sees the agent');

    // B's loop (and so its resync of the sets it holds) paused: the set
    // placed through A's API reaches B's agent by the message addressed to B
    await B.signaling.deployments.stop();
    const name = uniqueName();
    const r = await api(A, 'POST', '/api/deployments', { token, body: spec(name) });
    expect(r.status).toBe(201);
    const [one] = await onB.setWhere((l) => l.length === 1);
    expect(one!.deployment).toBe(name);
    B.signaling.deployments.start();

    onB.status(one!.id, 'running');
    await until(
      async () =>
        (await api(A, 'GET', `/api/deployments/${name}`, { token })).json.replicas[0]?.state ===
        'running',
      'A shows it running',
    );

    // a second node on A; the first one's agent dies
    const onA = new ClusterAgent(A);
    expect(await onA.join(token)).toEqual([]);
    onB.close();
    const [moved] = await onA.setWhere((l) => l.length === 1);
    expect(moved!.id).not.toBe(one!.id);
    // let both loops run a few more passes: still exactly one replica, on A's node
    for (const s of [A, B]) {
      s.signaling.deployments.kick();
      await s.signaling.deployments.settled();
    }
    const d = (await api(B, 'GET', `/api/deployments/${name}`, { token })).json;
    expect(d.replicas.filter((x: any) => x.desired === 'run')).toEqual([
      expect.objectContaining({ id: moved!.id, node: onA.identity.shortId }),
    ]);
    expect(d.events.filter((e: any) => e.kind === 'rescheduled')).toHaveLength(1);
    expect(user.id).toBeTruthy();
    onA.close();
  });
});
