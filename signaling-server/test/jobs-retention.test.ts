/**
 * Ended jobs go after `--job-retention`, with their files, against a real
 * server (SQLite) on a hand-driven clock and a worker over a real
 * WebSocket; waiting jobs stay whatever their age, and 0 keeps everything.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock, api, makeUser, withServer } from './helpers';
import { until } from './cluster-fixtures';
import { TestWorker } from './jobs-fixtures';
import { parseConfig } from '../src/config';

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of stops.splice(0).reverse()) await f();
});

/** A server whose one worker ran one job to success; a second job waits; the first has a file. */
async function setUp(retention: string) {
  const clock = new ManualClock();
  const s = await withServer({ jobRetention: retention }, { clock });
  stops.push(() => s.stop());
  const { token } = await makeUser(s.server);
  const done = (await api(s.server, 'POST', '/api/jobs', { token, body: { type: 'simulation' } }))
    .json as { id: string };
  const w = new TestWorker(s.server);
  stops.push(() => w.close());
  await w.join(token, { free: 1 });
  const l = await w.lease();
  w.succeed(l, { ok: 1 });
  await until(
    async () =>
      (await api(s.server, 'GET', `/api/jobs/${done.id}`, { token })).json.state === 'succeeded',
    'the job succeeded',
  );
  const waits = (await api(s.server, 'POST', '/api/jobs', { token, body: { type: 'simulation' } }))
    .json as { id: string };
  const folder = join(s.dir, 'job-files', done.id);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'out.txt'), 'x');
  /** Moves the server's time on by `ms` in 1 s steps, letting each sweep run. */
  const pass = async (ms: number) => {
    for (let t = 0; t < ms; t += 1000) {
      clock.advance(1000);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const status = async (id: string) =>
    (await api(s.server, 'GET', `/api/jobs/${id}`, { token })).status;
  return { done, waits, folder, pass, status };
}

describe('job retention', () => {
  it('removes an ended job and its files once past the retention, and keeps a waiting one', async () => {
    const { done, waits, folder, pass, status } = await setUp('2m');
    await pass(90_000);
    expect(await status(done.id)).toBe(200); // not yet two minutes
    await pass(100_000);
    await until(async () => (await status(done.id)) === 404, 'the ended job is removed');
    expect(existsSync(folder)).toBe(false);
    expect(await status(waits.id)).toBe(200);
  });

  it('keeps every job with a retention of 0', async () => {
    const { done, folder, pass, status } = await setUp('0');
    await pass(200_000);
    expect(await status(done.id)).toBe(200);
    expect(existsSync(folder)).toBe(true);
  });

  it('refuses a retention that is not one, naming what to say', () => {
    expect(() => parseConfig({ jobRetention: 'soon' })).toThrow(/7d, 12h or 30m/);
    expect(() => parseConfig({ jobRetention: '10s' })).toThrow(/at least 1m/);
    expect(parseConfig({ jobRetention: '12h' }).jobRetentionMs).toBe(12 * 3600 * 1000);
    expect(parseConfig({ jobRetention: 3 }).jobRetentionMs).toBe(3 * 86_400_000);
    expect(parseConfig({}).jobRetentionMs).toBe(7 * 86_400_000);
  });
});
