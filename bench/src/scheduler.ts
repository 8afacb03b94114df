/**
 * `tsx --conditions=peerway-source src/scheduler.ts` (in bench/): the scheduler's placement time, the
 * pure `plan()` alone, over 1,000 nodes of mixed sizes that already hold
 * 2,000 allocations of other deployments:
 * - one deployment of 100 replicas (bin-pack, and spread);
 * - re-planning it after 10 of its nodes were lost;
 * - 1,000 one-replica deployments placed one after another (each plan sees
 *   the allocations of the ones before), the "1,000 placements".
 * Medians with min–max of BENCH_SCHED_RUNS runs (default 21). Writes
 * bench/results/scheduler.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDeploymentSpec, type DeploymentSpec, type NodeResources } from '@peerway/protocol';
import { plan, type Allocation, type SchedulerNode } from '@peerway/signaling-server';
import { loadLine, startLoadSample } from './machine';

const loadSample = startLoadSample();

const NODES = Number(process.env.BENCH_SCHED_NODES ?? 1000);
const REPLICAS = Number(process.env.BENCH_SCHED_REPLICAS ?? 100);
const BACKGROUND = Number(process.env.BENCH_SCHED_BACKGROUND ?? 2000);
const DEPLOYMENTS = Number(process.env.BENCH_SCHED_DEPLOYMENTS ?? 1000);
const RUNS = Number(process.env.BENCH_SCHED_RUNS ?? 21);
const LOST = 10;
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const ME = 'bench-user';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** mulberry32: the same nodes every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function spec(over: Record<string, unknown>): DeploymentSpec {
  const r = parseDeploymentSpec({ image: 'registry.example/app:1', port: 8080, ...over });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

const rand = rng(42);
const sizes = [2, 4, 8, 16, 32];
const nodes: SchedulerNode[] = Array.from({ length: NODES }, (_, i) => {
  const cpu = sizes[Math.floor(rand() * sizes.length)]!;
  const id = i.toString(16).padStart(6, '0');
  const resources: NodeResources = {
    capacity: {
      cpuCores: cpu,
      memoryBytes: cpu * 2 * GiB,
      diskFreeBytes: 100 * GiB,
      gpus: rand() < 0.1 ? [{ model: 'RTX 3060', memoryBytes: 12 * GiB }] : [],
      os: 'linux',
      arch: 'x64',
      runtime: { name: 'podman', version: '4.3.1' },
    },
    offer: { cpuCores: null, memoryBytes: null },
    labels: { region: rand() < 0.5 ? 'home' : 'office' },
    deployments: true,
  };
  return { id, shortId: id, owner: ME, online: true, resources };
});
const background: Allocation[] = Array.from({ length: BACKGROUND }, (_, i) => ({
  id: `bg-${i}`,
  deployment: `bg-${i % 300}`,
  node: nodes[Math.floor(rand() * NODES)]!.id,
  resources: {
    cpuMillis: 250 + Math.floor(rand() * 4) * 250,
    memoryBytes: (1 + Math.floor(rand() * 4)) * 256 * MiB,
    gpu: 0,
  },
  createdAt: i,
}));
const opts = { deployer: ME };

function stat(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}

function time(fn: () => void): ReturnType<typeof stat> {
  fn(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return stat(ms);
}

const big = (placement: string) =>
  spec({ name: 'big', replicas: REPLICAS, placement, resources: { cpu: 0.5, memory: '512MiB' } });
let placed = 0;
const binpack = time(() => {
  placed = plan(big('binpack'), nodes, background, opts).place.length;
});
const spread = time(() => {
  plan(big('spread'), nodes, background, opts);
});

// re-plan after LOST of its nodes died
const first = plan(big('binpack'), nodes, background, opts);
const own: Allocation[] = first.place.map((p, i) => ({
  id: `big-${i}`,
  deployment: 'big',
  node: p.node,
  resources: p.resources,
  createdAt: BACKGROUND + i,
  state: 'running',
}));
const dead = new Set(own.slice(0, LOST).map((a) => a.node));
const afterLoss = nodes.map((n) => (dead.has(n.id) ? { ...n, online: false } : n));
let replaced = 0;
const replan = time(() => {
  replaced = plan(big('binpack'), afterLoss, [...background, ...own], opts).place.length;
});

// DEPLOYMENTS one-replica deployments, one after another
const small = Array.from({ length: DEPLOYMENTS }, (_, i) =>
  spec({ name: `app-${i}`, resources: { cpu: 0.25, memory: '256MiB' } }),
);
let sequentialPlaced = 0;
const sequential = time(() => {
  const allocs = [...background];
  sequentialPlaced = 0;
  for (const s of small) {
    const p = plan(s, nodes, allocs, opts);
    for (const pl of p.place) {
      allocs.push({
        id: `${s.name}-0`,
        deployment: s.name,
        node: pl.node,
        resources: pl.resources,
        createdAt: allocs.length,
      });
      sequentialPlaced++;
    }
  }
});

const f = (s: ReturnType<typeof stat>) =>
  `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
console.log(
  `\nScheduler plan(), ${NODES} nodes, ${BACKGROUND} allocations of other deployments, median (min–max) of ${RUNS} runs\n`,
);
console.log('| case | ms | placed |');
console.log('| --- | --- | --- |');
console.log(`| ${REPLICAS} replicas of one deployment, bin-pack | ${f(binpack)} | ${placed} |`);
console.log(`| ${REPLICAS} replicas of one deployment, spread | ${f(spread)} | ${placed} |`);
console.log(`| re-plan after ${LOST} of its nodes were lost | ${f(replan)} | ${replaced} |`);
console.log(
  `| ${DEPLOYMENTS} one-replica deployments in sequence (all of them) | ${f(sequential)} | ${sequentialPlaced} |`,
);

const out = join(ROOT, 'bench/results');
mkdirSync(out, { recursive: true });
const file = join(out, 'scheduler.json');
const runLoad = loadSample.end();
console.log(`\n${loadLine(runLoad)}`);
writeFileSync(
  file,
  JSON.stringify(
    {
      load: runLoad,
      date: new Date().toISOString(),
      node: process.version,
      nodes: NODES,
      background: BACKGROUND,
      runs: RUNS,
      replicasOneDeployment: { replicas: REPLICAS, placed, binpackMs: binpack, spreadMs: spread },
      replanAfterLoss: { lostNodes: LOST, placed: replaced, ms: replan },
      sequentialDeployments: { deployments: DEPLOYMENTS, placed: sequentialPlaced, ms: sequential },
    },
    null,
    2,
  ),
);
console.log(`\nwrote ${file}`);
