/**
 * `npm run bench:browser`: what a person in Chromium sees, side by side with
 * its references in one run, for each agent engine (BENCH_ENGINES):
 * - cold open of a service URL in a fresh profile, to the app's first byte
 *   and to its `load`, split into phases from the shell's performance marks,
 *   vs the same app opened directly; and BENCH_SLOW_RUNS (default 3) cold
 *   opens with the shell's bundle held back 200 ms, as on a slow link;
 * - warm request latency (p50/p99 of small GETs from the app) vs direct,
 *   with fetch() (which the shim hands to the shell directly) and with
 *   XMLHttpRequest (which goes through the service worker, as images,
 *   scripts and media do);
 * - download and upload of BENCH_MIB (default 256) MiB through the tunnel
 *   vs direct HTTP and vs the browser's own ceiling, a Chromium ⇄ Chromium
 *   data channel in one page; the download also through the worker (XHR).
 * Median (min–max) of BENCH_RUNS cold opens and BENCH_THROUGHPUT_RUNS
 * transfers. Writes bench/results/browser-<date>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadLine, startLoadSample, type RunLoad } from './machine';
import { join } from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { BENCH_ENGINES, ROOT, launchChromium, startBenchStack, stat } from './stack';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const THROUGHPUT_RUNS = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 3);
const SIZE = Number(process.env.BENCH_MIB ?? 256) * 1024 * 1024;
/**
 * Uploads are smaller: a request body crosses into the shell whole (a Blob:
 * the shim reads a fetch() body whole, and Chromium gives service workers no
 * upload streams), and 256 MiB through page, worker and shell crashed the
 * tab on this machine.
 */
const UPLOAD = Number(process.env.BENCH_UPLOAD_MIB ?? 64) * 1024 * 1024;
const WARM_GETS = 200;
const SLOW_RUNS = Number(process.env.BENCH_SLOW_RUNS ?? 3);
const SLOW_BUNDLE_MS = 200;
type Stat = ReturnType<typeof stat>;
const f = (x: Stat, d = 0) =>
  Number.isNaN(x.median) ? '—' : `${x.median.toFixed(d)} (${x.min.toFixed(d)}–${x.max.toFixed(d)})`;

const browser = await launchChromium();

/** Downloads n bytes of /big in the frame; MB/s. */
const download = (where: Page | Frame, n: number) =>
  where.evaluate(async (n) => {
    const t = performance.now();
    const r = await fetch(`/big?bytes=${n}`);
    const rd = r.body!.getReader();
    for (;;) if ((await rd.read()).done) break;
    return n / 1e6 / ((performance.now() - t) / 1000);
  }, n);

/** Downloads n bytes of /big with XMLHttpRequest (through the service worker); MB/s. */
const downloadXhr = (where: Page | Frame, n: number) =>
  where.evaluate(async (n) => {
    const t = performance.now();
    const got = await new Promise<number>((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open('GET', `/big?bytes=${n}`);
      x.responseType = 'arraybuffer';
      x.onload = () => resolve((x.response as ArrayBuffer).byteLength);
      x.onerror = () => reject(new Error('xhr failed'));
      x.send();
    });
    if (got !== n) throw new Error(`xhr download: ${got} of ${n} bytes`);
    return n / 1e6 / ((performance.now() - t) / 1000);
  }, n);

/** Uploads n bytes to /upload from the frame; MB/s (checks the count the app saw). */
const upload = (where: Page | Frame, n: number) =>
  where.evaluate(async (n) => {
    const body = new Uint8Array(n).fill(7);
    const t = performance.now();
    const got = Number(await (await fetch('/upload', { method: 'POST', body })).text());
    if (got !== n) throw new Error(`upload: the app saw ${got} of ${n} bytes`);
    return n / 1e6 / ((performance.now() - t) / 1000);
  }, n);

/** p50 and p99 of WARM_GETS sequential small GETs, ms. */
const warm = (where: Page | Frame) =>
  where.evaluate(async (count) => {
    const xs: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      await (await fetch('/small', { cache: 'no-store' })).text();
      xs.push(performance.now() - t);
    }
    xs.sort((a, b) => a - b);
    return { p50: xs[Math.floor(count * 0.5)]!, p99: xs[Math.floor(count * 0.99)]! };
  }, WARM_GETS);

/** The same with XMLHttpRequest: through the service worker. */
const warmXhr = (where: Page | Frame) =>
  where.evaluate(async (count) => {
    const xs: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      await new Promise((resolve, reject) => {
        const x = new XMLHttpRequest();
        x.open('GET', '/small');
        x.setRequestHeader('cache-control', 'no-store');
        x.onload = resolve;
        x.onerror = reject;
        x.send();
      });
      xs.push(performance.now() - t);
    }
    xs.sort((a, b) => a - b);
    return { p50: xs[Math.floor(count * 0.5)]!, p99: xs[Math.floor(count * 0.99)]! };
  }, WARM_GETS);

/** The browser's own ceiling: two peer connections in one page, n bytes one way; MB/s. */
const ceiling = (page: Page, n: number) =>
  page.evaluate(async (n) => {
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
  }, n);

/** The shell's marks and the app frame's first byte and load, ms from navigation start. */
const coldTimeline = (page: Page) =>
  page.evaluate(() => {
    // no named helpers in here: tsx would wrap them in a __name() the page lacks
    const m: Record<string, number> = {};
    for (const e of performance.getEntriesByType('mark'))
      if (e.name.startsWith('peerway:') && !(e.name.slice(8) in m))
        m[e.name.slice(8)] = e.startTime;
    const w = (document.getElementById('app') as HTMLIFrameElement).contentWindow!;
    const nav = w.performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    const off = w.performance.timeOrigin - performance.timeOrigin;
    return {
      shellLoaded: m.start ?? NaN,
      token: m.token ?? NaN,
      signalingOpen: m.signaling ?? NaN,
      session: m.session ?? NaN,
      offerSent: m.offer ?? NaN,
      answer: m.answer ?? NaN,
      iceConnected: m.ice ?? NaN,
      channelOpen: m.open ?? NaN,
      workerReady: m.worker ?? NaN,
      earlyScript: m.early ?? NaN,
      frameStart: m.frame ?? NaN,
      appFirstByte: off + nav.responseStart,
      appLoad: off + nav.loadEventEnd,
    };
  });

const appFrame = (page: Page) => page.frames().find((fr) => fr !== page.mainFrame())!;

async function benchEngine(engine: string) {
  const stack = await startBenchStack(engine);
  const serviceUrl = `http://bench.localhost:${stack.server.config.port}/`;
  const directUrl = `http://127.0.0.1:${stack.appPort}/`;
  const timelines: Awaited<ReturnType<typeof coldTimeline>>[] = [];
  const directFirstByte: number[] = [];
  const directLoad: number[] = [];
  const warmP: { p50: number; p99: number }[] = [];
  const warmDirect: { p50: number; p99: number }[] = [];
  const warmWorker: { p50: number; p99: number }[] = [];
  const down: number[] = [];
  const downWorker: number[] = [];
  const up: number[] = [];
  const downDirect: number[] = [];
  const upDirect: number[] = [];
  const ceil: number[] = [];
  const slowTimelines: Awaited<ReturnType<typeof coldTimeline>>[] = [];
  /** A fresh context on the service, ready: its app frame. `slowBundleMs`: the shell's bundle arrives that much later. */
  const openService = async (slowBundleMs = 0) => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    if (slowBundleMs > 0)
      await page.route(/\/__peerway\/shell\.js$/, async (route) => {
        await new Promise((r) => setTimeout(r, slowBundleMs));
        await route.continue();
      });
    await page.goto(serviceUrl);
    await page.frameLocator('#app').locator('#t').waitFor();
    await page.waitForFunction(
      () =>
        (document.getElementById('app') as HTMLIFrameElement).contentWindow?.document.readyState ===
        'complete',
    );
    return { ctx, page };
  };
  try {
    // Cold opens first, all of them: a bulk transfer just before would leave
    // the agent busy winding its session down and spoil the next open.
    for (let i = 0; i < RUNS; i++) {
      // a fresh profile each time (no service worker, no cache)
      const { ctx, page } = await openService();
      await page.waitForTimeout(50); // loadEventEnd is set after the load handlers ran
      timelines.push(await coldTimeline(page));
      warmP.push(await warm(appFrame(page)));
      warmWorker.push(await warmXhr(appFrame(page)));
      await ctx.close();

      const dctx = await browser.newContext();
      const dpage = await dctx.newPage();
      await dpage.goto(directUrl, { waitUntil: 'load' });
      const d = await dpage.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        return { firstByte: nav.responseStart, load: nav.loadEventStart };
      });
      directFirstByte.push(d.firstByte);
      directLoad.push(d.load);
      warmDirect.push(await warm(dpage));
      await dctx.close();
    }
    // A slow link: the bundle (130 KB) takes SLOW_BUNDLE_MS longer to come
    // (~5 Mbit/s); the page's first script opens the tunnel meanwhile.
    for (let i = 0; i < SLOW_RUNS; i++) {
      const { ctx, page } = await openService(SLOW_BUNDLE_MS);
      await page.waitForTimeout(50);
      slowTimelines.push(await coldTimeline(page));
      await ctx.close();
    }
    for (let i = 0; i < THROUGHPUT_RUNS; i++) {
      const { ctx, page } = await openService();
      down.push(await download(appFrame(page), SIZE));
      up.push(await upload(appFrame(page), UPLOAD));
      downWorker.push(await downloadXhr(appFrame(page), SIZE));
      await ctx.close();

      const dctx = await browser.newContext();
      const dpage = await dctx.newPage();
      await dpage.goto(directUrl, { waitUntil: 'load' });
      downDirect.push(await download(dpage, SIZE));
      upDirect.push(await upload(dpage, UPLOAD));
      ceil.push(await ceiling(dpage, SIZE));
      await dctx.close();
    }
  } finally {
    await stack.close();
  }
  const phase = (from: keyof (typeof timelines)[0], to: keyof (typeof timelines)[0]) =>
    stat(timelines.map((t) => t[to] - t[from]));
  return {
    engine,
    coldOpenMs: {
      firstByte: stat(timelines.map((t) => t.appFirstByte)),
      load: stat(timelines.map((t) => t.appLoad)),
      direct: { firstByte: stat(directFirstByte), load: stat(directLoad) },
      // The first steps overlap (the page's inline script asks for the
      // session while the bundle loads): when each happened, from navigation start.
      at: {
        signalingOpen: stat(timelines.map((t) => t.signalingOpen)),
        shellCodeStart: stat(timelines.map((t) => t.shellLoaded)),
        sessionGranted: stat(timelines.map((t) => t.session)),
        offerSent: stat(timelines.map((t) => t.offerSent)),
        workerReady: stat(timelines.map((t) => t.workerReady)),
        channelOpen: stat(timelines.map((t) => t.channelOpen)),
      },
      slowBundle: {
        delayMs: SLOW_BUNDLE_MS,
        firstByte: stat(slowTimelines.map((t) => t.appFirstByte)),
        shellCodeStart: stat(slowTimelines.map((t) => t.shellLoaded)),
        channelOpen: stat(slowTimelines.map((t) => t.channelOpen)),
      },
      // then one after the other
      phases: {
        offerToAnswer: phase('offerSent', 'answer'),
        ice: phase('answer', 'iceConnected'),
        dtlsSctp: phase('iceConnected', 'channelOpen'),
        // from when both the frame had started and the channel was open
        firstResponse: stat(
          timelines.map((t) => t.appFirstByte - Math.max(t.frameStart, t.channelOpen)),
        ),
        firstByteToLoad: phase('appFirstByte', 'appLoad'),
      },
      // each open's own timeline: which step held up which open
      runs: timelines,
    },
    warmGetMs: {
      p50: stat(warmP.map((w) => w.p50)),
      p99: stat(warmP.map((w) => w.p99)),
      viaWorker: {
        p50: stat(warmWorker.map((w) => w.p50)),
        p99: stat(warmWorker.map((w) => w.p99)),
      },
      direct: { p50: stat(warmDirect.map((w) => w.p50)), p99: stat(warmDirect.map((w) => w.p99)) },
    },
    throughputMBps: {
      download: stat(down),
      downloadViaWorker: stat(downWorker),
      upload: stat(up),
      direct: { download: stat(downDirect), upload: stat(upDirect) },
      chromiumDataChannelCeiling: stat(ceil),
      // each round's download beside the ceiling measured right after it
      rounds: down.map((d, i) => ({ download: d, ceiling: ceil[i] })),
    },
  };
}

try {
  const sample = startLoadSample();
  const results = {
    date: new Date().toISOString(),
    runs: RUNS,
    throughputRuns: THROUGHPUT_RUNS,
    bytes: SIZE,
    uploadBytes: UPLOAD,
    engines: [] as Awaited<ReturnType<typeof benchEngine>>[],
    load: null as RunLoad | null,
  };
  for (const e of BENCH_ENGINES) {
    console.error(`[bench:browser] engine ${e}…`);
    results.engines.push(await benchEngine(e));
  }
  const mib = SIZE / 1024 / 1024;
  console.log('\nPeerway browser bench (Chromium, loopback), median (min–max)\n');
  console.log(`| measure | ${results.engines.map((r) => r.engine).join(' | ')} | reference |`);
  console.log(`|---|${results.engines.map(() => '---|').join('')}---|`);
  const r0 = results.engines[0]!;
  /** A row; with a reference, each engine's median also as a ratio to it (same run). */
  const row = (
    label: string,
    pick: (r: (typeof results.engines)[0]) => Stat,
    ref: string,
    d = 0,
    refOf?: (r: (typeof results.engines)[0]) => Stat,
  ) =>
    console.log(
      `| ${label} | ${results.engines
        .map((r) => {
          const base = refOf?.(r).median;
          return f(pick(r), d) + (base ? ` (${(pick(r).median / base).toFixed(2)}×)` : '');
        })
        .join(' | ')} | ${ref} |`,
    );
  row(
    'cold open to app first byte, ms',
    (r) => r.coldOpenMs.firstByte,
    `direct ${f(r0.coldOpenMs.direct.firstByte, 1)}`,
    0,
    (r) => r.coldOpenMs.direct.firstByte,
  );
  row(
    'cold open to app load, ms',
    (r) => r.coldOpenMs.load,
    `direct ${f(r0.coldOpenMs.direct.load, 1)}`,
    0,
    (r) => r.coldOpenMs.direct.load,
  );
  for (const [k, label] of [
    ['signalingOpen', '— at: signaling WebSocket open (page script)'],
    ['shellCodeStart', "— at: shell's bundle running"],
    ['sessionGranted', '— at: session granted'],
    ['offerSent', '— at: offer sent'],
    ['workerReady', '— at: service worker ready'],
    ['channelOpen', '— at: data channel open'],
  ] as const)
    row(label, (r) => r.coldOpenMs.at[k], '', 1);
  for (const [k, label] of [
    ['offerToAnswer', '— offer to answer'],
    ['ice', '— ICE'],
    ['dtlsSctp', '— DTLS + SCTP'],
    ['firstResponse', '— first response (frame started and channel open, to first byte)'],
    ['firstByteToLoad', '— first byte to load'],
  ] as const)
    row(label, (r) => r.coldOpenMs.phases[k], '', 1);
  row(
    `cold open, bundle ${SLOW_BUNDLE_MS} ms late (a slow link): app first byte, ms`,
    (r) => r.coldOpenMs.slowBundle.firstByte,
    '',
  );
  row("— at: shell's bundle running", (r) => r.coldOpenMs.slowBundle.shellCodeStart, '', 1);
  row('— at: data channel open', (r) => r.coldOpenMs.slowBundle.channelOpen, '', 1);
  row(
    'warm GET p50, ms (fetch)',
    (r) => r.warmGetMs.p50,
    `direct ${f(r0.warmGetMs.direct.p50, 2)}`,
    2,
    (r) => r.warmGetMs.direct.p50,
  );
  row(
    'warm GET p99, ms (fetch)',
    (r) => r.warmGetMs.p99,
    `direct ${f(r0.warmGetMs.direct.p99, 2)}`,
    2,
    (r) => r.warmGetMs.direct.p99,
  );
  row('warm GET p50, ms (XHR, via the worker)', (r) => r.warmGetMs.viaWorker.p50, '', 2);
  row('warm GET p99, ms (XHR, via the worker)', (r) => r.warmGetMs.viaWorker.p99, '', 2);
  row(
    `download ${mib} MiB, MB/s`,
    (r) => r.throughputMBps.download,
    `direct ${f(r0.throughputMBps.direct.download, 1)}`,
    1,
    (r) => r.throughputMBps.direct.download,
  );
  row(
    '— Chromium⇄Chromium data channel measured beside it (the ceiling), MB/s',
    (r) => r.throughputMBps.chromiumDataChannelCeiling,
    '',
    1,
  );
  console.log(
    `| — download as a share of that ceiling (of the medians; each round against its own) | ${results.engines
      .map((r) => {
        const t = r.throughputMBps;
        const each = t.rounds.map((x) => (100 * x.download) / x.ceiling!);
        return `${((100 * t.download.median) / t.chromiumDataChannelCeiling.median).toFixed(0)} %; each round ${f(stat(each))} %`;
      })
      .join(' | ')} |  |`,
  );
  row(
    `download ${mib} MiB, MB/s (XHR, via the worker)`,
    (r) => r.throughputMBps.downloadViaWorker,
    '',
    1,
  );
  row(
    `upload ${UPLOAD / 1024 / 1024} MiB, MB/s`,
    (r) => r.throughputMBps.upload,
    `direct ${f(r0.throughputMBps.direct.upload, 1)}`,
    1,
    (r) => r.throughputMBps.direct.upload,
  );
  results.load = sample.end();
  console.log(
    `\nRatios in brackets: Peerway ÷ the reference measured in the same run (for times, > 1 is slower; for rates, < 1 is slower). ${loadLine(results.load)}`,
  );
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const out = join(ROOT, 'bench/results', `browser-${results.date.slice(0, 10)}.json`);
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${out}`);
} finally {
  await browser.close();
}
process.exit(0);
