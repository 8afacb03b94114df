/**
 * The server under the jobs benchmark, as its own process (its CPU and
 * memory read alone): the store on the redis-server given in
 * PEERWAY_REDIS_URL (the one BullMQ uses in the same run), limits raised
 * (every simulated worker comes from 127.0.0.1), one admin user with a
 * token. Prints one JSON line, then runs until killed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, startPeerwayServer } from '@peerway/signaling-server';
import { BENCH_LIMITS } from './limits';

const dir = mkdtempSync(join(tmpdir(), 'pw-jobs-bench-'));
const server = await startPeerwayServer(
  parseConfig({
    port: 0,
    dataDir: dir,
    logLevel: 'warn',
    presenceTimeoutMs: 120_000,
    heartbeatIntervalMs: 60_000,
    ...(process.env.PEERWAY_REDIS_URL ? { redisUrl: process.env.PEERWAY_REDIS_URL } : {}),
  }),
  { limits: BENCH_LIMITS },
);
const user = await server.store.createUser({
  email: `bench-${process.pid}@test.invalid`,
  passwordHash: null,
  isAdmin: true,
  externalSubject: null,
});
const { token } = await server.auth.createAccessToken(user.id, 'bench');
console.log(JSON.stringify({ url: server.url, token, pid: process.pid }));
const stop = () =>
  void server.close().finally(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// SIGUSR2 starts a CPU profile and the next SIGUSR2 writes it to
// PEERWAY_BENCH_PROFILE_DIR: a profile of one phase of a run, not of all of it.
const profileDir = process.env.PEERWAY_BENCH_PROFILE_DIR;
if (profileDir) {
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  let on = false;
  let n = 0;
  process.on('SIGUSR2', () => {
    void (async () => {
      if (!on) {
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
        on = true;
        return;
      }
      on = false;
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(join(profileDir, `phase-${++n}.cpuprofile`), JSON.stringify(profile));
    })();
  });
}
