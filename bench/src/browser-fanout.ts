/**
 * `npm run bench:browser-fanout`: N concurrent Chromium sessions on one agent
 * (default 10 and 50; `--sessions 10,50,100`). N pages, each its own browser
 * context (so each has its own shell, service worker and tunnel), open the
 * service URL at once; then every page downloads BENCH_FANOUT_MIB (default 4)
 * MiB at once. Reported per N: pages that opened and finished, time to open
 * all, per-session and total MB/s, agent CPU (cores) and RSS peak. Bench
 * stack's engine: the first of BENCH_ENGINES. Writes
 * bench/results/browser-fanout-<date>.json.
 *
 * The fan-out through Node clients (fanout.ts) goes to 100 sessions more
 * cheaply; this one is the real thing a node owner sees, bounded by what
 * Chromium can run on two cores.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { BENCH_ENGINES, ROOT, launchChromium, startBenchStack } from './stack';
import { loadLine, startLoadSample } from './machine';

const loadSample = startLoadSample();

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2)
  args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const COUNTS = (args.get('sessions') ?? '10,50').split(',').map(Number);
const EACH = Number(process.env.BENCH_FANOUT_MIB ?? 4) * 1024 * 1024;
const PHASE_TIMEOUT_MS = 180_000;

const browser = await launchChromium(['--renderer-process-limit=8']);

async function once(n: number) {
  const engine = BENCH_ENGINES[0]!;
  const stack = await startBenchStack(engine);
  const url = `http://bench.localhost:${stack.server.config.port}/`;
  const rssIdle = stack.agentRss();
  let rssPeak = rssIdle;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, stack.agentRss())), 100);
  const contexts = await Promise.all(Array.from({ length: n }, () => browser.newContext()));
  try {
    const pages = await Promise.all(contexts.map((c) => c.newPage()));
    let t = Date.now();
    const opened = await Promise.allSettled(
      pages.map(async (p: Page) => {
        await p.goto(url, { timeout: PHASE_TIMEOUT_MS });
        await p.frameLocator('#app').locator('#t').waitFor({ timeout: PHASE_TIMEOUT_MS });
      }),
    );
    const openSeconds = (Date.now() - t) / 1000;
    const ok = pages.filter((_, i) => opened[i]!.status === 'fulfilled');
    const cpu0 = stack.agentCpuS();
    t = Date.now();
    const done = await Promise.allSettled(
      ok.map((p) =>
        p
          .frames()
          .find((f) => f !== p.mainFrame())!
          .evaluate(async (bytes) => {
            const r = await fetch(`/big?bytes=${bytes}`);
            if (r.status !== 200)
              throw new Error(`status ${r.status}: ${(await r.text()).slice(0, 160)}`);
            const rd = r.body!.getReader();
            let got = 0;
            for (;;) {
              const c = await rd.read();
              if (c.done) break;
              got += c.value.byteLength;
            }
            if (got !== bytes) throw new Error(`got ${got} of ${bytes} bytes`);
          }, EACH),
      ),
    );
    const seconds = (Date.now() - t) / 1000;
    const completed = done.filter((d) => d.status === 'fulfilled').length;
    for (const r of [...opened, ...done].filter((x) => x.status === 'rejected').slice(0, 3))
      console.error(
        `[bench:browser-fanout] failed: ${String((r as PromiseRejectedResult).reason).slice(0, 200)}`,
      );
    return {
      engine,
      sessions: n,
      opened: ok.length,
      completed,
      openSeconds: +openSeconds.toFixed(2),
      perSessionMBps: +((EACH / 1e6 / seconds) * (completed / Math.max(1, ok.length))).toFixed(2),
      totalMBps: +((completed * EACH) / 1e6 / seconds).toFixed(1),
      agentCpuCores: +((stack.agentCpuS() - cpu0) / seconds).toFixed(2),
      agentRssIdleMiB: +(rssIdle / 1048576).toFixed(1),
      agentRssPeakMiB: +(rssPeak / 1048576).toFixed(1),
    };
  } finally {
    clearInterval(sampler);
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
    await stack.close();
  }
}

try {
  const rows = [];
  for (const n of COUNTS) {
    console.error(`[bench:browser-fanout] ${n} pages…`);
    rows.push(await once(n));
  }
  console.log(
    `\nPeerway browser fan-out (Chromium pages on one agent, ${EACH / 1048576} MiB each)\n`,
  );
  console.log(
    '| pages | engine | opened | finished | open all, s | per session MB/s | total MB/s | agent CPU, cores | agent RSS idle → peak, MiB |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.sessions} | ${r.engine} | ${r.opened} | ${r.completed} | ${r.openSeconds} | ${r.perSessionMBps} | ${r.totalMBps} | ${r.agentCpuCores} | ${r.agentRssIdleMiB} → ${r.agentRssPeakMiB} |`,
    );
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const date = new Date().toISOString();
  const out = join(ROOT, 'bench/results', `browser-fanout-${date.slice(0, 10)}.json`);
  const runLoad = loadSample.end();
  console.log(`\n${loadLine(runLoad)}`);
  writeFileSync(
    out,
    JSON.stringify({ load: runLoad, date, bytesEach: EACH, rows }, null, 2) + '\n',
  );
  console.log(`\nwrote ${out}`);
} finally {
  await browser.close();
}
process.exit(0);
