/**
 * `npm run bench:admin -w @peerway/bench`: the admin node list when anyone
 * has filled the store with unclaimed nodes (each new key pair that connects
 * adds a row). A real server (SQLite in a temp dir) with CLAIMED claimed
 * nodes and UNCLAIMED unclaimed ones: `GET /api/admin/nodes` (claimed and
 * online nodes listed, the rest counted) beside `?unclaimed=1` (every row,
 * which is what the view answered before), and the time the server's own
 * purge takes to remove them. Writes bench/results/admin-nodes-<date>.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseConfig, purgeOnce, startPeerwayServer } from '@peerway/signaling-server';
import { ROOT, stat } from './stack';
import { loadLine, startLoadSample } from './machine';

const loadSample = startLoadSample();

const UNCLAIMED = Number(process.env.BENCH_UNCLAIMED ?? 10_000);
const CLAIMED = Number(process.env.BENCH_CLAIMED ?? 50);
const ROUNDS = Number(process.env.BENCH_ADMIN_RUNS ?? 7);

const dir = mkdtempSync(join(tmpdir(), 'pw-bench-admin-'));
const server = await startPeerwayServer(parseConfig({ port: 0, dataDir: dir, logLevel: 'silent' }));
try {
  const admin = await server.store.createUser({
    email: 'admin@bench.invalid',
    passwordHash: null,
    isAdmin: true,
    externalSubject: null,
  });
  const { token } = await server.auth.createAccessToken(admin.id, 'bench');
  const longAgo = Date.now() - 30 * 86_400_000;
  for (let i = 0; i < CLAIMED; i++) {
    const id = randomBytes(32).toString('base64url');
    await server.store.upsertNode({ id, shortId: id.slice(0, 6), name: `c${i}`, now: longAgo });
    await server.store.claimNode(id, admin.id);
  }
  for (let i = 0; i < UNCLAIMED; i++) {
    const id = randomBytes(32).toString('base64url');
    await server.store.upsertNode({ id, shortId: id.slice(0, 6), name: `u${i}`, now: longAgo });
  }

  const time = async (path: string) => {
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const res = await fetch(server.url + path, { headers: { authorization: `Bearer ${token}` } });
      bytes = (await res.arrayBuffer()).byteLength;
      ms.push(performance.now() - t0);
    }
    return { ms: stat(ms), bytes };
  };
  const listed = await time('/api/admin/nodes');
  const everything = await time('/api/admin/nodes?unclaimed=1');
  const t0 = performance.now();
  const purged = await purgeOnce({
    store: server.store,
    clock: {
      now: () => Date.now(),
      setInterval: () => 0,
      clearInterval: () => {},
      setTimeout: () => 0,
      clearTimeout: () => {},
    },
  });
  const purgeMs = performance.now() - t0;
  const after = await time('/api/admin/nodes?unclaimed=1');

  console.log(
    `\nAdmin node list, ${CLAIMED} claimed + ${UNCLAIMED} unclaimed nodes (SQLite), median of ${ROUNDS} (max)\n`,
  );
  console.log('| request | ms | bytes |');
  console.log('| --- | --- | --- |');
  const row = (what: string, r: typeof listed) =>
    console.log(`| ${what} | ${r.ms.median.toFixed(1)} (${r.ms.max.toFixed(1)}) | ${r.bytes} |`);
  row('`/api/admin/nodes` (claimed and online listed, the rest counted)', listed);
  row('`?unclaimed=1`, every row (what the view answered before)', everything);
  row('every row, after the purge', after);
  console.log(`\npurge: ${purged.nodes} unclaimed nodes removed in ${purgeMs.toFixed(0)} ms`);

  const out = join(ROOT, 'bench/results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `admin-nodes-${new Date().toISOString().slice(0, 10)}.json`);
  const runLoad = loadSample.end();
  console.log(`\n${loadLine(runLoad)}`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        load: runLoad,
        date: new Date().toISOString(),
        claimed: CLAIMED,
        unclaimed: UNCLAIMED,
        rounds: ROUNDS,
        listed,
        everything,
        purge: { removed: purged.nodes, ms: purgeMs },
        afterPurge: after,
      },
      null,
      2,
    ),
  );
  console.log(`\nwrote ${file}`);
} finally {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
