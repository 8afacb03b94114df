/**
 * The server under the signaling-scale benchmark, as its own process (so its
 * memory and CPU are measured alone): SQLite in a temp dir, the per-IP and
 * per-connection limits raised (every simulated peer comes from 127.0.0.1),
 * one user with a token, and a service access token for the service
 * `scale`. Prints one JSON line, then runs until killed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, startPeerwayServer } from '@peerway/signaling-server';
import { BENCH_LIMITS } from './limits';
import { signServiceAccessToken } from '@peerway/protocol/node';

const dir = mkdtempSync(join(tmpdir(), 'pw-scale-'));
const server = await startPeerwayServer(
  parseConfig({
    port: 0,
    dataDir: dir,
    logLevel: 'warn',
    presenceTimeoutMs: 120_000,
    heartbeatIntervalMs: 60_000,
  }),
  { limits: BENCH_LIMITS },
);
const user = await server.store.createUser({
  email: 'bench@test.invalid',
  passwordHash: null,
  isAdmin: true,
  externalSubject: null,
});
const { token } = await server.auth.createAccessToken(user.id, 'bench');
const accessToken = await signServiceAccessToken({
  privateKey: server.keys.accessPrivateKey,
  issuer: server.config.publicUrl,
  service: 'scale',
  subject: user.id,
  access: 'private',
  ttlSeconds: 3600,
});
console.log(JSON.stringify({ url: server.url, token, accessToken, pid: process.pid }));
const stop = () =>
  void server.close().finally(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
