/**
 * `npm run bench`: Peerway against its references on this machine, side by
 * side in one run. Every figure is the median of several runs (min–max
 * shown). Prints a table and writes JSON to bench/results/.
 *
 * Measured here (Node tunnel client ⇄ real agent process ⇄ upstream, all on
 * loopback): session setup, warm request latency vs direct HTTP, download
 * and upload throughput vs direct HTTP, agent idle RSS and RSS per session.
 * Browser-side figures (cold open, Chromium throughput) are not here yet.
 */
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadLine, startLoadSample } from './machine';
import { join } from 'node:path';
import { startBenchStack, stat, ROOT } from './stack';
import { connectTunnel, type TunnelClient } from '@peerway/node-agent/client';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

interface Stat {
  median: number;
  min: number;
  max: number;
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function drain(
  body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<number> {
  let n = 0;
  for await (const c of body as AsyncIterable<Uint8Array>) n += c.byteLength;
  return n;
}

async function main() {
  const chunk = Buffer.alloc(256 * 1024, 7);
  const sample = startLoadSample();
  const stack = await startBenchStack();
  const { server } = stack;
  const upPort = stack.appPort;
  const rss = stack.agentRss;
  await new Promise((r) => setTimeout(r, 1000));
  const idleRss = rss();

  try {
    // 1. session setup
    const setups: { total: number; signaling: number; ice: number; dtls: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = await connectTunnel({ serverUrl: server.config.publicUrl, service: 'bench' });
      setups.push({
        total: t.timings.totalMs,
        signaling: t.timings.signalingMs,
        ice: t.timings.iceMs,
        dtls: t.timings.dtlsSctpMs,
      });
      t.close();
    }
    // 2. warm small GETs: tunnel vs direct
    const t = await connectTunnel({ serverUrl: server.config.publicUrl, service: 'bench' });
    const agentHttp = new http.Agent({ keepAlive: true });
    const direct = (path: string) =>
      new Promise<number>((res, rej) =>
        http
          .get({ host: '127.0.0.1', port: upPort, path, agent: agentHttp }, (r) => {
            let n = 0;
            r.on('data', (c: Buffer) => (n += c.length));
            r.on('end', () => res(n));
          })
          .on('error', rej),
      );
    const N = 300;
    const lat = async (fn: () => Promise<unknown>) => {
      for (let i = 0; i < 20; i++) await fn();
      const xs: number[] = [];
      for (let i = 0; i < N; i++) {
        const s = performance.now();
        await fn();
        xs.push(performance.now() - s);
      }
      return { p50: pct(xs, 50), p99: pct(xs, 99) };
    };
    const tunnelLat = await lat(async () => drain((await t.request('GET', '/small')).body));
    const directLat = await lat(() => direct('/small'));
    // 3. throughput
    const SIZE = 64 * 1024 * 1024;
    const down: number[] = [];
    const downDirect: number[] = [];
    const up: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 3); i++) {
      let s = performance.now();
      await drain((await t.request('GET', `/big?bytes=${SIZE}`)).body);
      down.push(SIZE / 1e6 / ((performance.now() - s) / 1000));
      s = performance.now();
      await direct(`/big?bytes=${SIZE}`);
      downDirect.push(SIZE / 1e6 / ((performance.now() - s) / 1000));
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= SIZE) return c.close();
          sent += chunk.length;
          c.enqueue(chunk);
        },
      });
      s = performance.now();
      await drain((await t.request('POST', '/upload', { body })).body);
      up.push(SIZE / 1e6 / ((performance.now() - s) / 1000));
    }
    // 4. memory per session
    const before = rss();
    const many: TunnelClient[] = [];
    for (let i = 0; i < 10; i++)
      many.push(await connectTunnel({ serverUrl: server.config.publicUrl, service: 'bench' }));
    await new Promise((r) => setTimeout(r, 500));
    const perSession = (rss() - before) / 10;
    for (const m of many) m.close();
    t.close();

    const results = {
      date: new Date().toISOString(),
      machine: '2 cores, Node ' + process.version,
      runs: RUNS,
      setupMs: {
        total: stat(setups.map((x) => x.total)),
        signaling: stat(setups.map((x) => x.signaling)),
        ice: stat(setups.map((x) => x.ice)),
        dtlsSctp: stat(setups.map((x) => x.dtls)),
      },
      warmLatencyMs: {
        tunnel: tunnelLat,
        direct: directLat,
        overheadP50: tunnelLat.p50 - directLat.p50,
        overheadP99: tunnelLat.p99 - directLat.p99,
      },
      throughputMBps: {
        tunnelDownload: stat(down),
        directDownload: stat(downDirect),
        tunnelUpload: stat(up),
      },
      agentMemory: { idleRssMiB: idleRss / 1048576, perSessionMiB: perSession / 1048576 },
      load: sample.end(),
    };
    const f = (s: Stat, d = 1) =>
      `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
    console.log('\nPeerway bench (Node client ⇄ agent ⇄ upstream, loopback)\n');
    console.log('| measure | Peerway | reference |');
    console.log('|---|---|---|');
    console.log(`| session setup, ms | ${f(results.setupMs.total)} | — |`);
    console.log(
      `|   signaling / ICE / DTLS+SCTP, ms | ${f(results.setupMs.signaling)} / ${f(results.setupMs.ice)} / ${f(results.setupMs.dtlsSctp)} | — |`,
    );
    console.log(
      `| small GET p50 / p99, ms | ${tunnelLat.p50.toFixed(2)} / ${tunnelLat.p99.toFixed(2)} (${(tunnelLat.p50 / directLat.p50).toFixed(2)}× / ${(tunnelLat.p99 / directLat.p99).toFixed(2)}×) | direct ${directLat.p50.toFixed(2)} / ${directLat.p99.toFixed(2)} |`,
    );
    console.log(
      `| download 64 MiB, MB/s | ${f(results.throughputMBps.tunnelDownload)} (${(results.throughputMBps.tunnelDownload.median / results.throughputMBps.directDownload.median).toFixed(2)}×) | direct ${f(results.throughputMBps.directDownload)} |`,
    );
    console.log(`| upload 64 MiB, MB/s | ${f(results.throughputMBps.tunnelUpload)} | — |`);
    console.log(`| agent idle RSS, MiB | ${results.agentMemory.idleRssMiB.toFixed(1)} | — |`);
    console.log(
      `| agent RSS per session, MiB | ${results.agentMemory.perSessionMiB.toFixed(2)} | — |`,
    );
    console.log(
      `\nRatios in brackets: Peerway ÷ the reference measured in the same run. ${loadLine(results.load)}`,
    );
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    const out = join(ROOT, 'bench/results', `node-client-${results.date.slice(0, 10)}.json`);
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    console.log(`\nwrote ${out}`);
  } finally {
    await stack.close();
  }
}

await main();
process.exit(0);
