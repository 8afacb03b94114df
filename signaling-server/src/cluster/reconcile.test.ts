import { describe, expect, it } from 'vitest';
import { parseDeploymentSpec, type DeploymentSpec, type NodeResources } from '@peerway/protocol';
import type { AllocationRecord } from '../store/store';
import { STOP_FORGET_MS, needsNewContainers, reconcile, type NodeState } from './reconcile';

const GiB = 1024 ** 3;
const NOW = 1_000_000_000;

function spec(over: Record<string, unknown> = {}): DeploymentSpec {
  const r = parseDeploymentSpec({ name: 'web', image: 'web:1', port: 80, ...over });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

const res = (): NodeResources => ({
  capacity: {
    cpuCores: 4,
    memoryBytes: 4 * GiB,
    diskFreeBytes: GiB,
    gpus: [],
    os: 'linux',
    arch: 'x64',
    runtime: { name: 'podman', version: '4' },
  },
  offer: { cpuCores: null, memoryBytes: null },
  labels: {},
  deployments: true,
});

const node = (id: string, over: Partial<NodeState> = {}): NodeState => ({
  id,
  shortId: id.padEnd(6, '0'),
  ownerId: 'u1',
  resources: res(),
  online: true,
  lost: false,
  ...over,
});

let seq = 0;
const alloc = (nodeId: string, over: Partial<AllocationRecord> = {}): AllocationRecord => ({
  id: `a${++seq}`,
  deployment: 'web',
  nodeId,
  state: 'running',
  reason: null,
  resources: { cpuMillis: 250, memoryBytes: 256 * 1024 ** 2, gpu: 0 },
  desired: 'run',
  createdAt: NOW - 10_000,
  since: NOW - 10_000,
  version: 1,
  failures: 0,
  ...over,
});

const run = (nodes: NodeState[], allocations: AllocationRecord[], over = {}) =>
  reconcile({
    name: 'web',
    ownerId: 'u1',
    spec: spec(),
    nodes,
    allocations,
    grants: new Set(),
    now: NOW,
    failuresOn: () => 0,
    exitCode: () => undefined,
    ...over,
  });

describe('reconcile', () => {
  it('moves a draining node’s replica: the replacement first, the old one stopped once it runs', () => {
    const old = alloc('n1');
    const nodes = [node('n1', { draining: true }), node('n2')];
    // first pass: a replacement on n2, the old replica keeps running
    const first = run(nodes, [old]);
    expect(first.place.map((p) => p.nodeId)).toEqual(['n2']);
    expect(first.stop).toEqual([]);
    // the replacement starts: still nothing stops
    const starting = alloc('n2', { state: 'starting' });
    expect(run(nodes, [old, starting]).stop).toEqual([]);
    expect(run(nodes, [old, starting]).place).toEqual([]);
    // it runs: the draining node's replica stops, with its reason
    const up = { ...starting, state: 'running' as const };
    const done = run(nodes, [old, up]);
    expect(done.stop).toEqual([old.id]);
    expect(done.place).toEqual([]);
    expect(done.events.map((e) => e.message)).toEqual([
      `replica ${old.id} on node n10000 stops: its node is draining, and the replicas run on other nodes`,
    ]);
  });

  it('keeps a draining node’s replica where no other node can take it, and places nothing new there', () => {
    const old = alloc('n1');
    const r = run([node('n1', { draining: true })], [old]);
    expect(r.stop).toEqual([]);
    expect(r.remove).toEqual([]);
    expect(r.place).toEqual([]);
    expect(r.pending.join(' ')).toMatch(/no node/);
    // nor does a draining node take a new deployment's replica
    expect(run([node('n1', { draining: true })], []).place).toEqual([]);
  });

  it('keeps a replica on a node offline within the grace, and places nothing new there', () => {
    const a = alloc('n1');
    const r = run([node('n1', { online: false }), node('n2')], [a], {
      spec: spec({ replicas: 2, maxPerNode: 2 }),
    });
    expect(r.stop).toEqual([]);
    expect(r.remove).toEqual([]);
    expect(r.place.map((p) => p.nodeId)).toEqual(['n2']);
    const alone = run([node('n1', { online: false })], [a], {
      spec: spec({ replicas: 2, maxPerNode: 2 }),
    });
    expect(alone.plan.keep.map((k) => k.allocation)).toEqual([a.id]);
    expect(alone.place).toEqual([]);
    expect(alone.plan.unplaced).toBe(1);
  });

  it('forgets a lost node’s replica and places its replacement elsewhere', () => {
    const a = alloc('n1');
    const r = run([node('n1', { online: false, lost: true }), node('n2')], [a]);
    expect(r.remove).toEqual([a.id]);
    expect(r.place).toEqual([{ nodeId: 'n2', resources: a.resources }]);
    expect(r.notes[0]).toMatchObject({ replaces: a.id, why: 'rescheduled' });
    expect(r.events[0]).toMatchObject({ kind: 'node-lost', allocation: a.id });
  });

  it('restarts a replica that exited on its own node once its backoff is over', () => {
    const waiting = alloc('n1', { state: 'exited', since: NOW - 500 });
    const early = run([node('n1'), node('n2')], [waiting]);
    expect(early.place).toEqual([]);
    expect(early.nextRestartInMs).toBe(500);
    const due = alloc('n1', { state: 'exited', since: NOW - 1000 });
    const r = run([node('n1'), node('n2')], [due]);
    expect(r.stop).toEqual([due.id]);
    expect(r.place.map((p) => p.nodeId)).toEqual(['n1']);
    expect(r.notes[0]).toMatchObject({ why: 'restarted', replaces: due.id });
  });

  it('moves a replica that failed too often on its node', () => {
    const a = alloc('n1', { state: 'failed', since: NOW - 60_000 });
    const r = run([node('n1'), node('n2')], [a], { failuresOn: () => 3 });
    expect(r.stop).toEqual([a.id]);
    expect(r.place.map((p) => p.nodeId)).toEqual(['n2']);
    expect(r.events[0]).toMatchObject({ kind: 'moved' });
  });

  it('restarts a replica unhealthy for longer than three health intervals, with the reason', () => {
    // spec(): health every 5 s, so the grace is 15 s
    const young = alloc('n1', { state: 'unhealthy', since: NOW - 14_000, reason: 'HTTP 404' });
    const wait = run([node('n1')], [young]);
    expect(wait.place).toEqual([]);
    expect(wait.nextRestartInMs).toBe(1000);
    // past the grace: a failure like any other, restarted after its backoff (1 s)
    const old = alloc('n1', { state: 'unhealthy', since: NOW - 16_000, reason: 'HTTP 404' });
    const r = run([node('n1')], [old]);
    expect(r.stop).toEqual([old.id]);
    expect(r.place.map((p) => p.nodeId)).toEqual(['n1']);
    expect(r.notes[0]).toMatchObject({
      why: 'restarted',
      replaces: old.id,
      cause: 'it was unhealthy for 16 s (HTTP 404)',
    });
    // after earlier failures on the node it moves
    const moved = run([node('n1'), node('n2')], [old], { failuresOn: () => 2 });
    expect(moved.place.map((p) => p.nodeId)).toEqual(['n2']);
    expect(moved.events[0]).toMatchObject({ kind: 'moved', allocation: old.id });
    expect(moved.events[0]!.message).toContain('unhealthy for 16 s');
    // restart: never leaves it unhealthy (only unrouted)
    expect(run([node('n1')], [old], { spec: spec({ restart: 'never' }) }).place).toEqual([]);
  });

  it('replaces every replica of an older spec', () => {
    const a = alloc('n1');
    const r = run([node('n1')], [a], { replace: new Set([a.id]) });
    expect(r.stop).toEqual([a.id]);
    expect(r.place.map((p) => p.nodeId)).toEqual(['n1']);
    expect(r.notes[0]!.why).toBe('updated');
    expect(r.plan.stop.map((s) => s.reason)).toEqual(['updated']);
  });

  it('forgets a stopped replica once its node is offline or it waited long enough', () => {
    const online = alloc('n1', { desired: 'stop', since: NOW - 1000 });
    const offline = alloc('n2', { desired: 'stop', since: NOW - 1000 });
    const old = alloc('n1', { desired: 'stop', since: NOW - STOP_FORGET_MS - 1 });
    const keep = alloc('n1');
    const r = run([node('n1'), node('n2', { online: false })], [online, offline, old, keep]);
    expect(r.remove.sort()).toEqual([offline.id, old.id].sort());
  });

  it('says which spec changes need new containers', () => {
    expect(needsNewContainers(spec(), spec({ replicas: 3, access: 'public' }))).toBe(false);
    expect(needsNewContainers(spec(), spec({ image: 'web:2' }))).toBe(true);
    expect(needsNewContainers(spec(), spec({ env: { A: '1' } }))).toBe(true);
  });
});
