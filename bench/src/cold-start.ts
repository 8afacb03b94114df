/**
 * `npm run bench:cold -w @peerway/bench`: how long `--help` takes cold for
 * the built bins a user installs (dist/, what npm ships), beside the same
 * bins run from the sources through tsx (the repository) and a bare `node -e
 * 0` (the floor: Node's own start). Builds the packages first when dist/ is
 * missing. Writes bench/results/cold-start-<date>.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, stat } from './stack';
import { loadLine, startLoadSample } from './machine';

const loadSample = startLoadSample();

const RUNS = Number(process.env.BENCH_COLD_RUNS ?? 15);

for (const [pkg, dir] of [
  ['@peerway/protocol', 'protocol'],
  ['@peerway/node-agent', 'node-agent'],
  ['@peerway/signaling-server', 'signaling-server'],
] as const)
  if (!existsSync(join(ROOT, dir, 'dist/index.js')))
    execFileSync('npm', ['run', 'build', '-w', pkg], { cwd: ROOT, stdio: 'inherit' });

function time(args: string[]): number[] {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    ms.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  }
  return ms;
}

const cases: [string, string[]][] = [
  ['node -e 0 (reference)', ['-e', '0']],
  ['peerway-agent --help (dist, as installed)', ['node-agent/dist/cli.js', '--help']],
  ['peerway-server --help (dist, as installed)', ['signaling-server/dist/cli.js', '--help']],
  ['peerway-agent --help (repository, tsx)', ['node-agent/bin/peerway-agent.js', '--help']],
  ['peerway-server --help (repository, tsx)', ['signaling-server/bin/peerway-server.js', '--help']],
];
const rows = cases.map(([name, args]) => ({ name, ...stat(time(args)) }));
const floor = rows[0]!.median;
console.log(`cold start, ${RUNS} runs each (ms)`);
console.log('| command | median | min | max | over node -e 0 |');
console.log('|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.name} | ${r.median.toFixed(0)} | ${r.min.toFixed(0)} | ${r.max.toFixed(0)} | ${(r.median - floor).toFixed(0)} |`,
  );
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, `bench/results/cold-start-${new Date().toISOString().slice(0, 10)}.json`);
const runLoad = loadSample.end();
console.log(`\n${loadLine(runLoad)}`);
writeFileSync(
  out,
  JSON.stringify({ load: runLoad, runs: RUNS, node: process.version, rows }, null, 2) + '\n',
);
console.log(`wrote ${out}`);
