import { describe, expect, it } from 'vitest';
import { parseDeploymentSpec, type DeploymentSpec, type NodeResources } from '@peerway/protocol';
import { antiAffinityScore, fitScore } from './rank';
import { describePlan, plan, type Allocation, type SchedulerNode } from './scheduler';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const ME = 'user-me';

function spec(over: Record<string, unknown> = {}): DeploymentSpec {
  const r = parseDeploymentSpec({
    name: 'blog',
    image: 'registry.example/blog:1.2',
    port: 8080,
    ...over,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

interface NodeOpts {
  cpu?: number;
  memory?: number;
  gpus?: number;
  offerCpu?: number | null;
  offerMemory?: number | null;
  labels?: Record<string, string>;
  deployments?: boolean;
  runtime?: boolean;
  online?: boolean;
  owner?: string | null;
  report?: boolean;
}

/** A node whose ID and short ID are both `id` (6 hex characters). */
function node(id: string, o: NodeOpts = {}): SchedulerNode {
  const resources: NodeResources = {
    capacity: {
      cpuCores: o.cpu ?? 4,
      memoryBytes: o.memory ?? 8 * GiB,
      diskFreeBytes: 50 * GiB,
      gpus: Array.from({ length: o.gpus ?? 0 }, () => ({
        model: 'RTX 3060',
        memoryBytes: 12 * GiB,
      })),
      os: 'linux',
      arch: 'x64',
      runtime: o.runtime === false ? null : { name: 'podman', version: '4.3.1' },
    },
    offer: { cpuCores: o.offerCpu ?? null, memoryBytes: o.offerMemory ?? null },
    labels: o.labels ?? {},
    deployments: o.deployments ?? true,
  };
  return {
    id,
    shortId: id,
    owner: o.owner === undefined ? ME : o.owner,
    online: o.online ?? true,
    resources: o.report === false ? null : resources,
  };
}

let seq = 0;
function alloc(nodeId: string, o: Partial<Allocation> = {}): Allocation {
  seq++;
  return {
    id: o.id ?? `a${String(seq).padStart(3, '0')}`,
    deployment: o.deployment ?? 'blog',
    node: nodeId,
    resources: o.resources ?? { cpuMillis: 250, memoryBytes: 256 * MiB, gpu: 0 },
    createdAt: o.createdAt ?? seq,
    ...(o.state ? { state: o.state } : {}),
  };
}

const mine = { deployer: ME };
const nodesOf = (p: ReturnType<typeof plan>) => p.place.map((x) => x.node);

describe('plan: placing', () => {
  it('places a replica where it fits', () => {
    const p = plan(spec(), [node('aaaaaa')], [], mine);
    expect(p.place).toEqual([
      expect.objectContaining({
        node: 'aaaaaa',
        replaces: null,
        resources: { cpuMillis: 250, memoryBytes: 256 * MiB, gpu: 0 },
      }),
    ]);
    expect(p).toMatchObject({
      unplaced: 0,
      reasons: [],
      keep: [],
      stop: [],
      changed: true,
      desired: 1,
    });
    expect(describePlan(p)).toEqual(['place a replica on node aaaaaa']);
  });

  it('says, per node, why nothing fits', () => {
    const s = spec({
      resources: { memory: '512MiB', cpu: 0.5 },
      constraints: { labels: { region: 'home' } },
    });
    const nodes = [
      node('100000', { online: false, labels: { region: 'home' } }),
      node('200000', { deployments: false, labels: { region: 'home' } }),
      node('300000', { runtime: false, labels: { region: 'home' } }),
      node('400000', { labels: { region: 'office' } }),
      node('500000', {}),
      node('600000', { offerMemory: 300 * MiB, labels: { region: 'home' } }),
      node('700000', { report: false }),
      node('800000', {
        offerCpu: 0.25,
        offerMemory: 300 * MiB,
        gpus: 0,
        labels: { region: 'home' },
      }),
    ];
    const p = plan(s, nodes, [], mine);
    expect(p.place).toEqual([]);
    expect(p.unplaced).toBe(1);
    expect(p.changed).toBe(false);
    expect(p.reasons.map((r) => [r.shortId, r.code, r.message])).toEqual([
      ['100000', 'offline', 'offline'],
      ['200000', 'not_enabled', expect.stringContaining('deployments not enabled')],
      ['300000', 'no_runtime', expect.stringContaining('no container runtime')],
      ['400000', 'label', 'label region is office, not home'],
      ['500000', 'label', 'label region=home missing'],
      ['600000', 'resources', 'needs 512 MiB memory, 300 MiB free'],
      ['700000', 'no_report', expect.stringContaining('has not reported')],
      ['800000', 'resources', 'needs 0.5 CPU, 0.25 CPU free; needs 512 MiB memory, 300 MiB free'],
    ]);
    const text = describePlan(p);
    expect(text[0]).toBe('1 replica fits on no node:');
    expect(text).toContain('  node 600000: needs 512 MiB memory, 300 MiB free');
  });

  it('counts the memory other deployments hold on a node', () => {
    const nodes = [node('aaaaaa', { memory: 1 * GiB }), node('bbbbbb', { memory: 1 * GiB })];
    const other = alloc('aaaaaa', {
      deployment: 'db',
      resources: { cpuMillis: 100, memoryBytes: 900 * MiB, gpu: 0 },
    });
    const p = plan(spec(), nodes, [other], mine);
    expect(nodesOf(p)).toEqual(['bbbbbb']);
    const none = plan(spec(), [nodes[0]!], [other], mine);
    expect(none.reasons[0]!.message).toBe('needs 256 MiB memory, 124 MiB free');
  });

  it('frees nothing for the owner’s cap: free is min(capacity, offer) less allocated', () => {
    const n = node('aaaaaa', { memory: 16 * GiB, offerMemory: 1 * GiB, cpu: 8, offerCpu: 1 });
    expect(plan(spec({ resources: { memory: '2GiB' } }), [n], [], mine).reasons[0]!.message).toBe(
      'needs 2 GiB memory, 1 GiB free',
    );
    expect(plan(spec({ resources: { cpu: 2 } }), [n], [], mine).reasons[0]!.message).toBe(
      'needs 2 CPU, 1 CPU free',
    );
    expect(nodesOf(plan(spec({ resources: { memory: '1GiB', cpu: 1 } }), [n], [], mine))).toEqual([
      'aaaaaa',
    ]);
  });

  it('with no nodes at all, says how to add one', () => {
    const p = plan(spec(), [], [], mine);
    expect(p.unplaced).toBe(1);
    expect(describePlan(p)).toContain(
      '  no nodes: start an agent with `peerway-agent run --deployments`',
    );
  });
});

describe('plan: bin-pack and spread', () => {
  // a small node already half used and a big empty one
  const small = node('aaaaaa', { cpu: 2, memory: 2 * GiB });
  const big = node('bbbbbb', { cpu: 16, memory: 32 * GiB });
  const used = alloc('aaaaaa', {
    deployment: 'db',
    resources: { cpuMillis: 1000, memoryBytes: 1 * GiB, gpu: 0 },
  });

  it('bin-packs onto the fullest node that fits by default', () => {
    expect(nodesOf(plan(spec(), [big, small], [used], mine))).toEqual(['aaaaaa']);
  });

  it('spreads onto the emptiest node when asked', () => {
    expect(nodesOf(plan(spec({ placement: 'spread' }), [big, small], [used], mine))).toEqual([
      'bbbbbb',
    ]);
  });

  it('fills one node before the next across deployments when bin-packing, and spreads them when spreading', () => {
    const nodes = [node('aaaaaa'), node('bbbbbb'), node('cccccc')];
    const run = (placement: string) => {
      const allocs: Allocation[] = [];
      for (const name of ['one', 'two', 'three']) {
        const p = plan(spec({ name, placement }), nodes, allocs, mine);
        allocs.push(...p.place.map((pl) => alloc(pl.node, { deployment: name })));
      }
      return allocs.map((a) => a.node);
    };
    expect(run('binpack')).toEqual(['aaaaaa', 'aaaaaa', 'aaaaaa']);
    expect(run('spread')).toEqual(['aaaaaa', 'bbbbbb', 'cccccc']);
  });

  it('scores as Nomad does: a full node 1 and an empty one 0 for bin-packing, the mirror for spread', () => {
    const cap = { cpuMillis: 1000, memoryBytes: 1000, gpu: 0 };
    expect(fitScore('binpack', cap, { cpuMillis: 1000, memoryBytes: 1000, gpu: 0 })).toBe(1);
    expect(fitScore('binpack', cap, { cpuMillis: 0, memoryBytes: 0, gpu: 0 })).toBe(0);
    expect(fitScore('spread', cap, { cpuMillis: 0, memoryBytes: 0, gpu: 0 })).toBe(1);
    expect(fitScore('spread', cap, { cpuMillis: 1000, memoryBytes: 1000, gpu: 0 })).toBe(0);
    // half used: 20 - 2 * 10^0.5 = 13.675..., / 18
    expect(fitScore('binpack', cap, { cpuMillis: 500, memoryBytes: 500, gpu: 0 })).toBeCloseTo(
      (20 - 2 * Math.sqrt(10)) / 18,
      10,
    );
    expect(antiAffinityScore(0, 3)).toBeNull();
    expect(antiAffinityScore(1, 4)).toBe(-0.5);
  });
});

describe('plan: anti-affinity', () => {
  it('puts replicas on distinct nodes even where bin-packing would stack them', () => {
    const nodes = [node('aaaaaa', { memory: 64 * GiB }), node('bbbbbb', { memory: 2 * GiB })];
    const p = plan(spec({ replicas: 2 }), nodes, [], mine);
    expect(nodesOf(p).sort()).toEqual(['aaaaaa', 'bbbbbb']);
  });

  it('leaves a replica unplaced rather than stack it, and says so', () => {
    const p = plan(spec({ replicas: 2 }), [node('aaaaaa')], [], mine);
    expect(nodesOf(p)).toEqual(['aaaaaa']);
    expect(p.unplaced).toBe(1);
    expect(p.reasons).toEqual([
      expect.objectContaining({
        shortId: 'aaaaaa',
        code: 'anti_affinity',
        message: expect.stringContaining('already runs a replica of blog (anti-affinity'),
      }),
    ]);
  });

  it('co-locates up to maxPerNode, still preferring distinct nodes', () => {
    expect(nodesOf(plan(spec({ replicas: 2, maxPerNode: 2 }), [node('aaaaaa')], [], mine))).toEqual(
      ['aaaaaa', 'aaaaaa'],
    );
    const two = plan(
      spec({ replicas: 2, maxPerNode: 2 }),
      [node('aaaaaa'), node('bbbbbb')],
      [],
      mine,
    );
    expect(nodesOf(two)).toEqual(['aaaaaa', 'bbbbbb']);
    const three = plan(spec({ replicas: 3, maxPerNode: 2 }), [node('aaaaaa')], [], mine);
    expect(three.unplaced).toBe(1);
    expect(three.reasons[0]!.message).toBe('already runs 2 replicas of blog (maxPerNode: 2)');
  });
});

describe('plan: GPUs, labels, node lists, grants', () => {
  it('places a GPU replica only where a GPU is free', () => {
    const s = spec({ resources: { gpu: 1 } });
    const gpuNode = node('cccccc', { gpus: 1 });
    const nodes = [node('aaaaaa'), node('bbbbbb'), gpuNode];
    expect(nodesOf(plan(s, nodes, [], mine))).toEqual(['cccccc']);
    const taken = alloc('cccccc', {
      deployment: 'ml',
      resources: { cpuMillis: 100, memoryBytes: 100 * MiB, gpu: 1 },
    });
    const p = plan(s, nodes, [taken], mine);
    expect(p.reasons.map((r) => r.message)).toEqual([
      'needs 1 GPU, 0 free',
      'needs 1 GPU, 0 free',
      'needs 1 GPU, 0 free',
    ]);
  });

  it('places only on nodes with every label the spec asks for', () => {
    const s = spec({ constraints: { labels: { region: 'home', disk: 'ssd' } } });
    const nodes = [
      node('aaaaaa', { labels: { region: 'home' } }),
      node('bbbbbb', { labels: { region: 'home', disk: 'ssd' } }),
    ];
    expect(nodesOf(plan(s, nodes, [], mine))).toEqual(['bbbbbb']);
    expect(plan(s, [nodes[0]!], [], mine).reasons[0]!.message).toBe('label disk=ssd missing');
  });

  it('places only on the nodes the spec names', () => {
    const s = spec({ constraints: { nodes: ['bbbbbb'] } });
    const p = plan(s, [node('aaaaaa'), node('bbbbbb', { memory: 1 * GiB })], [], mine);
    expect(nodesOf(p)).toEqual(['bbbbbb']);
    const none = plan(s, [node('aaaaaa')], [], mine);
    expect(none.reasons[0]).toMatchObject({
      code: 'not_listed',
      message: 'not among constraints.nodes (bbbbbb)',
    });
  });

  it("never places on another user's node without a grant, and does with one", () => {
    const theirs = node('bbbbbb', { owner: 'user-other' });
    expect(plan(spec(), [theirs], [], mine).place).toEqual([]);
    const granted = plan(spec(), [theirs], [], { deployer: ME, grants: new Set(['bbbbbb']) });
    expect(nodesOf(granted)).toEqual(['bbbbbb']);
    expect(plan(spec(), [node('cccccc', { owner: null })], [], mine).place).toEqual([]);
  });

  it("counts strangers' nodes without naming them, unless the spec names them", () => {
    const nodes = [
      node('aaaaaa', { owner: 'user-other' }),
      node('bbbbbb', { owner: 'user-other' }),
      node('cccccc', { online: false }),
    ];
    const p = plan(spec(), nodes, [], mine);
    expect(p.reasons.map((r) => r.shortId)).toEqual(['cccccc']);
    expect(p.otherNodes).toBe(2);
    expect(describePlan(p)).toContain('  2 other nodes are not yours and not granted to you');
    const named = plan(spec({ constraints: { nodes: ['aaaaaa'] } }), nodes, [], mine);
    expect(named.reasons[0]).toMatchObject({
      shortId: 'aaaaaa',
      code: 'not_permitted',
      message: 'not yours and not granted to you for deploying',
    });
  });
});

describe('plan: re-planning', () => {
  it('after a node is lost, places only the missing replica and keeps the healthy one where it is', () => {
    const a = alloc('aaaaaa', { id: 'r-a', state: 'running' });
    const b = alloc('bbbbbb', { id: 'r-b', state: 'running' });
    // cccccc is emptier and bigger: it would win a fresh spread, but r-a stays put
    const nodes = [
      node('aaaaaa'),
      node('bbbbbb', { online: false }),
      node('cccccc', { memory: 64 * GiB }),
    ];
    const p = plan(spec({ replicas: 2, placement: 'spread' }), nodes, [a, b], mine);
    expect(p.keep).toEqual([{ allocation: 'r-a', node: 'aaaaaa', shortId: 'aaaaaa' }]);
    expect(p.stop).toEqual([
      {
        allocation: 'r-b',
        node: 'bbbbbb',
        shortId: 'bbbbbb',
        reason: 'node_lost',
        message: 'node bbbbbb is offline',
      },
    ]);
    expect(p.place).toEqual([expect.objectContaining({ node: 'cccccc', replaces: 'r-b' })]);
    expect(describePlan(p)).toEqual([
      'keep r-a on node aaaaaa',
      'stop r-b on node bbbbbb: node bbbbbb is offline',
      'place a replica on node cccccc (replaces r-b)',
    ]);
  });

  it('replaces a replica on a node that is gone from the list', () => {
    const p = plan(spec(), [node('aaaaaa')], [alloc('ffffff', { id: 'r-x' })], mine);
    expect(p.stop[0]).toMatchObject({
      allocation: 'r-x',
      reason: 'node_unknown',
      shortId: 'ffffff',
    });
    expect(p.place[0]).toMatchObject({ node: 'aaaaaa', replaces: 'r-x' });
  });

  it('with no node left to take it, stops the lost replica and reports the shortfall', () => {
    const a = alloc('aaaaaa', { id: 'r-a' });
    const b = alloc('bbbbbb', { id: 'r-b' });
    const p = plan(
      spec({ replicas: 2 }),
      [node('aaaaaa'), node('bbbbbb', { online: false })],
      [a, b],
      mine,
    );
    expect(p.keep.map((k) => k.allocation)).toEqual(['r-a']);
    expect(p.stop.map((s) => s.allocation)).toEqual(['r-b']);
    expect(p.unplaced).toBe(1);
    expect(p.reasons.map((r) => [r.shortId, r.code])).toEqual([
      ['aaaaaa', 'anti_affinity'],
      ['bbbbbb', 'offline'],
    ]);
  });

  it('moves a failed replica off the node it failed on where another fits', () => {
    const failed = alloc('aaaaaa', { id: 'r-f', state: 'failed' });
    // bin-packing alone would pick aaaaaa again (it is the fuller one)
    const nodes = [node('aaaaaa', { memory: 1 * GiB }), node('bbbbbb', { memory: 64 * GiB })];
    const p = plan(spec(), nodes, [failed], mine);
    expect(p.stop).toEqual([expect.objectContaining({ allocation: 'r-f', reason: 'failed' })]);
    expect(p.place).toEqual([expect.objectContaining({ node: 'bbbbbb', replaces: 'r-f' })]);
    // with no other node, it is tried again where it failed, in the room the failed one leaves
    const tight = node('aaaaaa', { offerMemory: 256 * MiB });
    expect(nodesOf(plan(spec(), [tight], [failed], mine))).toEqual(['aaaaaa']);
  });

  it('moves replicas off nodes that no longer qualify (grant revoked, deployments off, labels changed)', () => {
    const s = spec({ replicas: 3, constraints: { labels: { region: 'home' } } });
    const home = { labels: { region: 'home' } };
    const nodes = [
      node('aaaaaa', { ...home, owner: 'user-other' }),
      node('bbbbbb', { ...home, deployments: false }),
      node('cccccc', { labels: { region: 'office' } }),
      node('dddddd', home),
      node('eeeeee', home),
      node('ffffff', home),
    ];
    const allocs = [
      alloc('aaaaaa', { id: 'r-1' }),
      alloc('bbbbbb', { id: 'r-2' }),
      alloc('cccccc', { id: 'r-3' }),
    ];
    const p = plan(s, nodes, allocs, mine);
    expect(p.stop.map((x) => [x.allocation, x.reason])).toEqual([
      ['r-1', 'ineligible'],
      ['r-2', 'ineligible'],
      ['r-3', 'ineligible'],
    ]);
    expect(p.stop[2]!.message).toBe('node cccccc: label region is office, not home');
    expect(nodesOf(p)).toEqual(['dddddd', 'eeeeee', 'ffffff']);
    expect(p.place.map((x) => x.replaces)).toEqual(['r-1', 'r-2', 'r-3']);
  });

  it('keeps everything when nothing changed', () => {
    const allocs = [alloc('aaaaaa', { id: 'r-1' }), alloc('bbbbbb', { id: 'r-2' })];
    const p = plan(
      spec({ replicas: 2 }),
      [node('aaaaaa'), node('bbbbbb'), node('cccccc')],
      allocs,
      mine,
    );
    expect(p).toMatchObject({ changed: false, place: [], stop: [], unplaced: 0 });
    expect(p.keep.map((k) => k.allocation)).toEqual(['r-1', 'r-2']);
    expect(describePlan(p)).toContain('no change: 2 of 2 placed');
  });

  it('scales up by placing only the new replicas', () => {
    const allocs = [alloc('aaaaaa', { id: 'r-1' })];
    const p = plan(
      spec({ replicas: 3 }),
      [node('aaaaaa'), node('bbbbbb'), node('cccccc')],
      allocs,
      mine,
    );
    expect(p.keep.map((k) => k.allocation)).toEqual(['r-1']);
    expect(nodesOf(p).sort()).toEqual(['bbbbbb', 'cccccc']);
    expect(p.place.every((x) => x.replaces === null)).toBe(true);
  });

  it('scales down by stopping the replica on the fullest node first', () => {
    const nodes = [node('aaaaaa'), node('bbbbbb', { memory: 1 * GiB }), node('cccccc')];
    const allocs = [
      alloc('aaaaaa', { id: 'r-1', createdAt: 1, state: 'running' }),
      alloc('bbbbbb', { id: 'r-2', createdAt: 2, state: 'running' }),
      alloc('cccccc', { id: 'r-3', createdAt: 3, state: 'running' }),
    ];
    const p = plan(spec({ replicas: 2 }), nodes, allocs, mine);
    expect(p.stop).toEqual([expect.objectContaining({ allocation: 'r-2', reason: 'scale_down' })]);
    expect(p.keep.map((k) => k.allocation)).toEqual(['r-1', 'r-3']);
    expect(p.place).toEqual([]);
  });

  it('scales down the newest first on equally full nodes, and not-running replicas before any', () => {
    const nodes = [node('aaaaaa'), node('bbbbbb'), node('cccccc')];
    const running = [
      alloc('aaaaaa', { id: 'r-1', createdAt: 10, state: 'running' }),
      alloc('bbbbbb', { id: 'r-2', createdAt: 30, state: 'running' }),
      alloc('cccccc', { id: 'r-3', createdAt: 20, state: 'running' }),
    ];
    expect(plan(spec({ replicas: 1 }), nodes, running, mine).stop.map((s) => s.allocation)).toEqual(
      ['r-2', 'r-3'],
    );
    const oneStarting = running.map((a) =>
      a.id === 'r-1' ? { ...a, state: 'starting' as const } : a,
    );
    expect(
      plan(spec({ replicas: 2 }), nodes, oneStarting, mine).stop.map((s) => s.allocation),
    ).toEqual(['r-1']);
  });

  it('stops the newest extras on a node when maxPerNode was lowered, then places them elsewhere', () => {
    const allocs = [
      alloc('aaaaaa', { id: 'r-1', createdAt: 1 }),
      alloc('aaaaaa', { id: 'r-2', createdAt: 2 }),
    ];
    const p = plan(
      spec({ replicas: 2, maxPerNode: 1 }),
      [node('aaaaaa'), node('bbbbbb')],
      allocs,
      mine,
    );
    expect(p.stop).toEqual([
      expect.objectContaining({ allocation: 'r-2', reason: 'max_per_node' }),
    ]);
    expect(p.keep.map((k) => k.allocation)).toEqual(['r-1']);
    expect(nodesOf(p)).toEqual(['bbbbbb']);
  });
});

describe('plan: determinism', () => {
  it('breaks ties by node ID, whatever order the nodes come in', () => {
    const nodes = ['dddddd', 'bbbbbb', 'eeeeee', 'aaaaaa', 'cccccc'].map((id) => node(id));
    const s = spec({ replicas: 3 });
    const first = plan(s, nodes, [], mine);
    expect(nodesOf(first)).toEqual(['aaaaaa', 'bbbbbb', 'cccccc']);
    for (let i = 0; i < 5; i++) {
      const shuffled = [...nodes].sort(() => Math.random() - 0.5);
      expect(plan(s, shuffled, [], mine)).toEqual(first);
    }
  });

  it('gives the same plan for the same input, allocations in any order', () => {
    const nodes = Array.from({ length: 20 }, (_, i) =>
      node((0x100000 + i * 0x1111).toString(16), { memory: (i + 1) * GiB, cpu: (i % 4) + 1 }),
    );
    const allocs = nodes.slice(0, 10).map((n, i) =>
      alloc(n.id, {
        deployment: `d${i}`,
        resources: { cpuMillis: 500, memoryBytes: (i % 3) * 256 * MiB + MiB, gpu: 0 },
      }),
    );
    const s = spec({ replicas: 7, resources: { cpu: 0.5, memory: '512MiB' } });
    const a = plan(s, nodes, allocs, mine);
    const b = plan(s, [...nodes].reverse(), [...allocs].reverse(), mine);
    expect(b).toEqual(a);
    expect(a.place).toHaveLength(7);
  });
});
