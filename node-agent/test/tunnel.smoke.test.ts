import { afterAll, expect, it } from 'vitest';
import http from 'node:http';
import { Fixture, readAll } from './helpers';
import { connectTunnel } from '@peerway/node-agent/client';

const fx = new Fixture();
afterAll(() => fx.cleanup());

it('GET through a real agent', async () => {
  const up = http.createServer((req, res) => res.end(`hello ${req.url}`));
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  fx.onCleanup(() => new Promise((r) => up.close(() => r())));
  const port = (up.address() as { port: number }).port;
  const server = await fx.server();
  const { token } = await fx.user(server);
  await fx.agent({ serverUrl: server.config.publicUrl, token, services: [`smoke=127.0.0.1:${port}`] });
  const t = await connectTunnel({ serverUrl: server.config.publicUrl, service: 'smoke', userToken: token });
  console.log(t.timings);
  const r = await t.request('GET', '/x?y=1');
  expect(r.status).toBe(200);
  expect((await readAll(r.body)).toString()).toBe('hello /x?y=1');
  t.close();
});
