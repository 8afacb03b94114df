/** The store contract on a real redis-server (Debian), started by the test with AOF on. */
import { afterAll, beforeAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreContract } from '../src/store/contract';
import { RedisStore } from '../src/store/redis';

const dir = mkdtempSync(join(tmpdir(), 'pw-redis-'));
const port = 21000 + Math.floor(Math.random() * 20000);
let redis: ChildProcess;
let db = 0;

beforeAll(async () => {
  redis = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--databases',
      '64',
    ],
    { stdio: 'pipe' },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    redis.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Ready to accept connections/.test(out)) resolve();
    });
    redis.once('exit', (c) => reject(new Error(`redis-server exited ${c}: ${out}`)));
  });
});
afterAll(async () => {
  redis.kill('SIGTERM');
  await new Promise((r) => redis.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
});

// Each test gets its own empty database of the same server.
runStoreContract('Redis', async () => {
  const s = new RedisStore(`redis://127.0.0.1:${port}/${++db}`);
  await s.redis.flushdb();
  await s.migrate();
  return s;
});
