/**
 * `npm run bench:browser`: what a person in Chromium sees, side by side with
 * its references in one run: cold open of a service URL (to the app's `load`)
 * vs the same app opened directly; download throughput through the tunnel
 * into the page vs direct HTTP; and the browser's own ceiling, a
 * Chromium ⇄ Chromium data channel in one page. Median (min–max) of
 * BENCH_RUNS runs. Writes bench/results/browser-<date>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, startBenchStack, stat } from './stack';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SIZE = 64 * 1024 * 1024;
const f = (x: { median: number; min: number; max: number }, d = 0) =>
  `${x.median.toFixed(d)} (${x.min.toFixed(d)}–${x.max.toFixed(d)})`;

const stack = await startBenchStack();
const { server, appPort } = stack;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ],
});
const serviceUrl = `http://bench.localhost:${server.config.port}/`;
const directUrl = `http://127.0.0.1:${appPort}/`;

try {
  const cold: number[] = [];
  const setup: number[] = [];
  const direct: number[] = [];
  const down: number[] = [];
  const downDirect: number[] = [];
  const ceiling: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // cold open: a fresh profile each time (no service worker, no cache)
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    let t = Date.now();
    await page.goto(serviceUrl);
    await page.frameLocator('#app').locator('#t').waitFor();
    await page.waitForFunction(
      () =>
        (document.getElementById('app') as HTMLIFrameElement).contentWindow?.document.readyState ===
        'complete',
    );
    cold.push(Date.now() - t);
    setup.push(Number(await page.evaluate(() => document.documentElement.dataset.peerwaySetupMs)));
    const frame = page.frames().find((fr) => fr !== page.mainFrame())!;
    if (i < 3) {
      t = Date.now();
      await frame.evaluate(async (n) => {
        const r = await fetch(`/big?bytes=${n}`);
        const rd = r.body!.getReader();
        for (;;) if ((await rd.read()).done) break;
      }, SIZE);
      down.push(SIZE / 1e6 / ((Date.now() - t) / 1000));
    }
    await ctx.close();

    const dctx = await browser.newContext();
    const dpage = await dctx.newPage();
    t = Date.now();
    await dpage.goto(directUrl, { waitUntil: 'load' });
    direct.push(Date.now() - t);
    if (i < 3) {
      t = Date.now();
      await dpage.evaluate(async (n) => {
        const r = await fetch(`/big?bytes=${n}`);
        const rd = r.body!.getReader();
        for (;;) if ((await rd.read()).done) break;
      }, SIZE);
      downDirect.push(SIZE / 1e6 / ((Date.now() - t) / 1000));
      // the browser's own ceiling: two peer connections in one page
      ceiling.push(
        await dpage.evaluate(async (n) => {
          const a = new RTCPeerConnection();
          const b = new RTCPeerConnection();
          a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
          b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
          const dc = a.createDataChannel('x');
          let got = 0;
          const done = new Promise<void>(
            (r) =>
              (b.ondatachannel = (e) =>
                (e.channel.onmessage = (m) => (
                  (got += (m.data as ArrayBuffer).byteLength),
                  got >= n && r()
                ))),
          );
          await a.setLocalDescription();
          await b.setRemoteDescription(a.localDescription!);
          await b.setLocalDescription();
          await a.setRemoteDescription(b.localDescription!);
          await new Promise((r) => (dc.onopen = r));
          dc.binaryType = 'arraybuffer';
          dc.bufferedAmountLowThreshold = 1 << 20;
          const msg = new Uint8Array(64 * 1024);
          const start = performance.now();
          for (let sent = 0; sent < n; sent += msg.length) {
            if (dc.bufferedAmount > 4 << 20) await new Promise((r) => (dc.onbufferedamountlow = r));
            dc.send(msg);
          }
          await done;
          const mbps = n / 1e6 / ((performance.now() - start) / 1000);
          a.close();
          b.close();
          return mbps;
        }, SIZE),
      );
    }
    await dctx.close();
  }
  const results = {
    date: new Date().toISOString(),
    runs: RUNS,
    coldOpenMs: { peerway: stat(cold), tunnelSetup: stat(setup), direct: stat(direct) },
    downloadMBps: {
      peerway: stat(down),
      direct: stat(downDirect),
      chromiumDataChannelCeiling: stat(ceiling),
    },
  };
  console.log('\nPeerway browser bench (Chromium, loopback)\n');
  console.log('| measure | Peerway | reference |');
  console.log('|---|---|---|');
  console.log(
    `| cold open to app load, ms | ${f(results.coldOpenMs.peerway)} (of which tunnel setup ${f(results.coldOpenMs.tunnelSetup)}) | direct ${f(results.coldOpenMs.direct)} |`,
  );
  console.log(
    `| download 64 MiB into the page, MB/s | ${f(results.downloadMBps.peerway, 1)} | direct ${f(results.downloadMBps.direct, 1)}; Chromium⇄Chromium data channel ${f(results.downloadMBps.chromiumDataChannelCeiling, 1)} |`,
  );
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const out = join(ROOT, 'bench/results', `browser-${results.date.slice(0, 10)}.json`);
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${out}`);
} finally {
  await browser.close();
  await stack.close();
}
process.exit(0);
