/** SSE arrives as sent; Range answers 206; 100 MiB down and 20 MiB up arrive intact (hashed). */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack } from '../support/stack';
import { FNV_OFFSET, TONE_SECONDS, byteAt, fnv1a, startMediaApp } from '../fixtures/media';

const stack = new Stack();
beforeAll(async () => {
  const app = await startMediaApp();
  stack.onStop(() => app.close());
  await stack.start();
  const owner = await stack.user();
  await stack.agent(owner.token, [`media=127.0.0.1:${app.port},public`]);
});
afterAll(() => stack.stop());

it('shows Server-Sent Events as they arrive', async () => {
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('media', '/'));
  const app = Stack.app(page);
  await expect
    .poll(() => app.locator('#events li').count(), { timeout: 20_000 })
    .toBeGreaterThanOrEqual(4);
  const times = (await app.locator('#events li').allTextContents()).map((t) =>
    Number(t.split('@')[1]),
  );
  // 400 ms apart at the source: spread out on arrival, not delivered at the end
  expect(times[3]! - times[0]!).toBeGreaterThan(800);
});

it('an <audio> element loads, learns its duration and seeks through the tunnel (Range from the media pipeline)', async () => {
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('media', '/'));
  const app = Stack.app(page);
  await app.locator('#events').waitFor({ timeout: 20_000 });
  const result = await app.locator('body').evaluate(async () => {
    const a = document.createElement('audio');
    a.preload = 'auto';
    a.muted = true;
    const once = (ev: string) =>
      new Promise<void>((resolve, reject) => {
        a.addEventListener(ev, () => resolve(), { once: true });
        a.addEventListener('error', () => reject(new Error(`media error ${a.error?.code}`)), {
          once: true,
        });
      });
    const meta = once('loadedmetadata');
    a.src = '/tone.wav';
    document.body.append(a);
    await meta;
    const seeked = once('seeked');
    a.currentTime = 25;
    await seeked;
    await a.play();
    await new Promise((r) => setTimeout(r, 300));
    a.pause();
    return { duration: a.duration, time: a.currentTime };
  });
  expect(result.duration).toBeCloseTo(TONE_SECONDS, 1);
  expect(result.time).toBeGreaterThanOrEqual(25);
  // The media pipeline asked for byte ranges, and the upstream saw them.
  const asked = (await app
    .locator('body')
    .evaluate(async () => (await fetch('/ranges-asked')).json())) as string[];
  expect(asked.length).toBeGreaterThan(0);
  expect(asked.every((r) => /^bytes=\d+-\d*$/.test(r))).toBe(true);
});

it('serves Range requests and large transfers intact', async () => {
  const page = await (await stack.context()).newPage();
  await page.goto(stack.serviceUrl('media', '/'));
  const app = Stack.app(page);
  await app.locator('#events').waitFor({ timeout: 20_000 });
  const range = await app.locator('body').evaluate(async () => {
    const r = await fetch('/doc.pdf', { headers: { range: 'bytes=1000-1009' } });
    return {
      status: r.status,
      cr: r.headers.get('content-range'),
      bytes: Array.from(new Uint8Array(await r.arrayBuffer())),
    };
  });
  expect(range.status).toBe(206);
  expect(range.cr).toBe('bytes 1000-1009/2097152');
  expect(range.bytes).toEqual(Array.from({ length: 10 }, (_, i) => byteAt(1000 + i)));

  const total = 100 * 1024 * 1024;
  const started = Date.now();
  const down = await app.locator('body').evaluate(async (_el, n) => {
    const r = await fetch(`/big?bytes=${n}`);
    const reader = r.body!.getReader();
    let h = 2166136261;
    let len = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (let i = 0; i < value.length; i++) h = Math.imul(h ^ value[i]!, 16777619) >>> 0;
      len += value.length;
    }
    return { h, len };
  }, total);
  const downSecs = (Date.now() - started) / 1000;
  let expected = FNV_OFFSET;
  const chunk = new Uint8Array(1 << 20);
  for (let off = 0; off < total; off += chunk.length) {
    for (let i = 0; i < chunk.length; i++) chunk[i] = byteAt(off + i);
    expected = fnv1a(expected, chunk);
  }
  expect(down.len).toBe(total);
  expect(down.h).toBe(expected);

  const upStarted = Date.now();
  const up = await app.locator('body').evaluate(
    async (_el, n) => {
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = (i * 7 + (i >>> 11)) & 0xff;
      const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', data)), (b) =>
        b.toString(16).padStart(2, '0'),
      ).join('');
      const r = await fetch('/upload', { method: 'POST', body: data });
      return { sent: digest, got: (await r.json()) as { bytes: number; sha256: string } };
    },
    20 * 1024 * 1024,
  );
  expect(up.got.bytes).toBe(20 * 1024 * 1024);
  expect(up.got.sha256).toBe(up.sent);
  console.log(
    `[media] browser download ${(total / 1e6 / downSecs).toFixed(1)} MB/s; upload 20 MiB in ${((Date.now() - upStarted) / 1000).toFixed(1)} s`,
  );
}, 180_000);
