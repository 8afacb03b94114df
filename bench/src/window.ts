/**
 * `npm run bench:window`: what the tunnel's per-stream window does to one
 * download over a path with a real round trip. Loopback has none (and this
 * machine's kernel has no netem to add one), so this runs the real
 * TunnelMux on both ends over a modelled link: a FrameChannel pair that
 * sends at LINK_MBPS and delivers each message RTT/2 after it left. What it
 * models is a path the data channel itself fills; what it measures is only
 * the tunnel's own flow control on top of it (SCTP's congestion control is
 * not modelled).
 *
 * For each round trip: the protocol's initial window alone (256 KiB, what
 * every stream had before receivers grew it) vs the default receive window.
 * Writes bench/results/window-<date>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_RECEIVE_WINDOW_BYTES,
  INITIAL_WINDOW_BYTES,
  TunnelMux,
  type FrameChannel,
} from '@peerway/protocol';
import { ROOT, stat } from './stack';
import { loadLine, startLoadSample } from './machine';

const loadSample = startLoadSample();

const LINK_MBPS = Number(process.env.BENCH_LINK_MBPS ?? 100);
const RTTS_MS = (process.env.BENCH_RTTS_MS ?? '2,20,50,100').split(',').map(Number);
const SIZE = Number(process.env.BENCH_WINDOW_MIB ?? 16) * 1024 * 1024;
const ROUNDS = Number(process.env.BENCH_WINDOW_RUNS ?? 3);
/** Every download stops by itself after this long (bounded loop). */
const TIMEOUT_MS = 60_000;

/** One end of the modelled link: a serialising sender and a fixed one-way delay. */
class LinkEnd implements FrameChannel {
  peer!: LinkEnd;
  readonly maxMessageSize = 256 * 1024;
  bufferedAmount = 0;
  private open = true;
  private threshold = 0;
  /** When the sender's wire is free again, ms (performance.now clock). */
  private wireFreeAt = 0;
  private readonly msgCbs: ((d: Uint8Array) => void)[] = [];
  private readonly lowCbs: (() => void)[] = [];
  private readonly closeCbs: (() => void)[] = [];

  constructor(
    private readonly bytesPerMs: number,
    private readonly oneWayMs: number,
  ) {}

  get isOpen() {
    return this.open;
  }
  send(data: Uint8Array): void {
    const copy = data.slice();
    this.bufferedAmount += copy.byteLength;
    const leaves = Math.max(performance.now(), this.wireFreeAt) + copy.byteLength / this.bytesPerMs;
    this.wireFreeAt = leaves;
    setTimeout(() => {
      const before = this.bufferedAmount;
      this.bufferedAmount -= copy.byteLength;
      if (before > this.threshold && this.bufferedAmount <= this.threshold)
        for (const cb of this.lowCbs) cb();
      setTimeout(() => {
        if (this.open && this.peer.open) for (const cb of this.peer.msgCbs) cb(copy);
      }, this.oneWayMs);
    }, leaves - performance.now());
  }
  setBufferedAmountLowThreshold(n: number) {
    this.threshold = n;
  }
  onMessage(cb: (d: Uint8Array) => void) {
    this.msgCbs.push(cb);
  }
  onBufferedAmountLow(cb: () => void) {
    this.lowCbs.push(cb);
  }
  onClose(cb: () => void) {
    this.closeCbs.push(cb);
  }
  close() {
    if (!this.open) return;
    this.open = false;
    for (const cb of this.closeCbs) cb();
    this.peer.close();
  }
}

/** One SIZE-byte download over a fresh link; MB/s. */
async function download(rttMs: number, receiveWindowBytes: number): Promise<number> {
  const bytesPerMs = (LINK_MBPS * 1e6) / 8 / 1000;
  const a = new LinkEnd(bytesPerMs, rttMs / 2);
  const b = new LinkEnd(bytesPerMs, rttMs / 2);
  a.peer = b;
  b.peer = a;
  const client = new TunnelMux(a, { role: 'client', receiveWindowBytes });
  const server = new TunnelMux(b, { role: 'server', receiveWindowBytes });
  const chunk = new Uint8Array(64 * 1024);
  server.onRequest((req) => {
    let left = SIZE;
    void req.respond(
      { status: 200, headers: [] },
      new ReadableStream<Uint8Array>({
        pull(c) {
          const n = Math.min(left, chunk.length);
          left -= n;
          c.enqueue(chunk.subarray(0, n));
          if (left === 0) c.close();
        },
      }),
    );
  });
  const t = performance.now();
  const res = await client.request({ method: 'GET', path: '/big', headers: [] });
  const reader = res.body.getReader();
  let got = 0;
  for (;;) {
    if (performance.now() - t > TIMEOUT_MS) throw new Error(`download over ${rttMs} ms stalled`);
    const { done, value } = await reader.read();
    if (done) break;
    got += value.byteLength;
  }
  if (got !== SIZE) throw new Error(`got ${got} of ${SIZE} bytes`);
  const mbps = SIZE / 1e6 / ((performance.now() - t) / 1000);
  a.close();
  return mbps;
}

const linkMBps = LINK_MBPS / 8;
const rows = [];
for (const rtt of RTTS_MS) {
  const initial: number[] = [];
  const grown: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    initial.push(await download(rtt, INITIAL_WINDOW_BYTES));
    grown.push(await download(rtt, DEFAULT_RECEIVE_WINDOW_BYTES));
  }
  rows.push({ rttMs: rtt, initialWindow: stat(initial), receiveWindow: stat(grown) });
}

const f = (x: ReturnType<typeof stat>) =>
  `${x.median.toFixed(1)} (${((100 * x.median) / linkMBps).toFixed(0)} %)`;
console.log(
  `\nOne ${SIZE / 1024 / 1024} MiB download through TunnelMux over a modelled ${LINK_MBPS} Mbit/s link (${linkMBps.toFixed(1)} MB/s), MB/s (share of the link), median of ${ROUNDS}\n`,
);
console.log(
  `| round trip, ms | window ${INITIAL_WINDOW_BYTES / 1024} KiB (initial only) | window ${DEFAULT_RECEIVE_WINDOW_BYTES / 1024 / 1024} MiB (default receive window) |`,
);
console.log('| --- | --- | --- |');
for (const r of rows) console.log(`| ${r.rttMs} | ${f(r.initialWindow)} | ${f(r.receiveWindow)} |`);

const out = join(ROOT, 'bench/results');
mkdirSync(out, { recursive: true });
const file = join(out, `window-${new Date().toISOString().slice(0, 10)}.json`);
const runLoad = loadSample.end();
console.log(`\n${loadLine(runLoad)}`);
writeFileSync(
  file,
  JSON.stringify(
    {
      load: runLoad,
      date: new Date().toISOString(),
      linkMbps: LINK_MBPS,
      sizeBytes: SIZE,
      rounds: ROUNDS,
      initialWindowBytes: INITIAL_WINDOW_BYTES,
      receiveWindowBytes: DEFAULT_RECEIVE_WINDOW_BYTES,
      rows,
    },
    null,
    2,
  ),
);
console.log(`\nwrote ${file}`);
process.exit(0);
