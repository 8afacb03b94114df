/**
 * `npm run bench:link`: Peerway through real shaped links (e2e/netlab/link.ts:
 * delay and loss from the user-space TUN forwarder, rate from tbf), each
 * figure beside its reference measured through the same link in the same run.
 *
 * The visitor sits at the link's "a" end; the signaling server, the agent and
 * the upstream app at its "b" end, so the signaling, the ICE checks and the
 * data all cross the link. Per profile (RTT, rate, loss):
 *  (a) the link's own check: UDP ping RTT, one raw TCP download, and the
 *      forwarder's CPU use during it; once per run, the forwarder's ceiling
 *      (TCP through it with no rate limit);
 *  (b) the reference, plain HTTP over TCP through the link: a cold request
 *      (new connection) to its first byte, warm request latency, download and
 *      upload of BENCH_LINK_MIB (default 32) MiB;
 *  (c) the same through Peerway with the Node tunnel client (werift) and the
 *      agent on each engine (BENCH_ENGINES): the cold open (token, signaling,
 *      ICE, DTLS, SCTP) to the first byte of a small GET, warm request latency,
 *      download and upload; each as a ratio to (b).
 * Every transfer is bounded by BENCH_LINK_DEADLINE_S (default 60) seconds (a
 * cut one is marked). Median (min–max) of BENCH_RUNS (default 3) rounds, the
 * reference and Peerway interleaved in each. The run records its date, the
 * load average and the machine's busy CPU, and how much of it was not this
 * benchmark's own processes. Writes bench/results/link-<date>.json.
 *
 * Runs as root (network namespaces); gcc builds the forwarder. Internally it
 * starts itself in the namespaces with a role: `server` (at b) or `client`
 * (at a).
 */
import http from 'node:http';
import net from 'node:net';
import dgram from 'node:dgram';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { join } from 'node:path';
import { machineBusyS } from './machine';
import { ROOT, sendFiller, stat, upstreamApp } from './stack';

const SELF = join(ROOT, 'bench/src/link.ts');
const APP_PORT = 9000;
const RAW_PORT = 9001;
const ECHO_PORT = 9002;
const SERVER_PORT = 8080;
const SIZE = Number(process.env.BENCH_LINK_MIB ?? 32) * 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DEADLINE_S = Number(process.env.BENCH_LINK_DEADLINE_S ?? 60);
const WARM_GETS = 20;
/** BENCH_LINK_CHROMIUM=0: leave out the Chromium ⇄ Chromium channel. */
const CHROMIUM = process.env.BENCH_LINK_CHROMIUM !== '0';
/** The forwarder's ceiling is measured with a longer transfer (slow start is a smaller part of it). */
const CEILING_SIZE = 256 * 1024 * 1024;
const ENGINES = (process.env.BENCH_ENGINES ?? 'werift,node-datachannel').split(',').filter(Boolean);

interface Profile {
  name: string;
  rttMs: number;
  rateMbit: number;
  lossPct: number;
}
/** BENCH_LINK_PROFILES=20,50: only the profiles of these RTTs; BENCH_LINK_CUSTOM=rtt/rate/loss: that one. */
const PROFILES: Profile[] = process.env.BENCH_LINK_CUSTOM
  ? [process.env.BENCH_LINK_CUSTOM.split('/').map(Number)].map(([rttMs, rateMbit, lossPct]) => ({
      name: `${rttMs} ms / ${rateMbit || '∞'} Mbit/s, ${lossPct ?? 0} % loss`,
      rttMs: rttMs!,
      rateMbit: rateMbit!,
      lossPct: lossPct ?? 0,
    }))
  : [
      { name: '20 ms / 200 Mbit/s', rttMs: 20, rateMbit: 200, lossPct: 0 },
      { name: '50 ms / 100 Mbit/s', rttMs: 50, rateMbit: 100, lossPct: 0 },
      { name: '100 ms / 50 Mbit/s, 0.5 % loss', rttMs: 100, rateMbit: 50, lossPct: 0.5 },
    ].filter(
      (p) =>
        !process.env.BENCH_LINK_PROFILES ||
        process.env.BENCH_LINK_PROFILES.split(',').includes(String(p.rttMs)),
    );

const chunk = Buffer.alloc(256 * 1024, 7);
const ticks = 100; // USER_HZ on Linux

/** CPU seconds (user + system) of a process so far, or 0 if it is gone. */
function procCpuS(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / ticks;
  } catch {
    return 0;
  }
}
const selfCpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** A number for the log: '—' for a missing one (JSON carries NaN as null). */
const num = (v: number | null | undefined, d = 1) =>
  v === null || v === undefined || Number.isNaN(v) ? '—' : v.toFixed(d);
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;

// ---------------------------------------------------------------- server role

async function serverRole(bIp: string, engines: string[]): Promise<void> {
  const { parseConfig, startPeerwayServer } = await import('@peerway/signaling-server');
  const app = upstreamApp(); // /small, /big?bytes=N, /upload, as bench:browser's
  await new Promise<void>((r) => app.listen(APP_PORT, bIp, () => r()));
  // the link's own check: raw TCP (the client sends the byte count it wants) and a UDP echo
  const raw = net.createServer((c) => {
    c.once('data', (d) => sendFiller(c, Number(d.toString().trim())));
    c.on('error', () => {});
  });
  await new Promise<void>((r) => raw.listen(RAW_PORT, bIp, () => r()));
  const echo = dgram.createSocket('udp4');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  await new Promise<void>((r) => echo.bind(ECHO_PORT, bIp, () => r()));

  const dataDir = mkdtempSync(join(tmpdir(), 'pw-benchlink-'));
  const publicUrl = `http://${bIp}:${SERVER_PORT}`;
  const server = await startPeerwayServer(
    parseConfig({ host: bIp, port: SERVER_PORT, dataDir, publicUrl }),
  );
  const user = await server.store.createUser({
    email: 'bench@test.invalid',
    passwordHash: null,
    isAdmin: false,
    externalSubject: null,
  });
  const { token } = await server.auth.createAccessToken(user.id, 'bench');
  const agents = engines.map((engine) => {
    const home = mkdtempSync(join(tmpdir(), 'pw-benchlink-agent-'));
    const agent = spawn(
      process.execPath,
      [
        join(ROOT, 'node-agent/bin/peerway-agent.js'),
        'run',
        '--server',
        publicUrl,
        '--token',
        token,
        '--service',
        `bench-${engine}=${bIp}:${APP_PORT},public`,
        '--engine',
        engine,
      ],
      {
        env: { PEERWAY_LOG_LEVEL: 'warn', ...process.env, PEERWAY_HOME: home },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    return {
      home,
      agent,
      up: new Promise<void>((r) =>
        agent.stdout!.on('data', (d: Buffer) => /✓/.test(d.toString()) && r()),
      ),
    };
  });
  await Promise.all(agents.map((a) => a.up));
  const stop = () => {
    for (const a of agents) a.agent.kill('SIGTERM');
    void server.close();
    for (const a of agents) rmSync(a.home, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`ready ${JSON.stringify({ publicUrl })}`);
}

// ---------------------------------------------------------------- client role

interface Transfer {
  mbps: number;
  bytes: number;
  complete: boolean;
}
const toTransfer = (bytes: number, ms: number, want: number): Transfer => ({
  mbps: bytes / 1e6 / (ms / 1000),
  bytes,
  complete: bytes >= want,
});

async function checkClient(bIp: string, size: number): Promise<unknown> {
  // sequential UDP pings
  const s = dgram.createSocket('udp4');
  const rtts: number[] = [];
  await new Promise<void>((res) => {
    let t = 0;
    const go = () => ((t = performance.now()), s.send('p', ECHO_PORT, bIp));
    s.on('message', () => {
      rtts.push(performance.now() - t);
      if (rtts.length < 30) go();
      else res();
    });
    go();
    setTimeout(res, 15_000);
  });
  s.close();
  rtts.shift(); // the first also resolves neighbours
  // one raw TCP download of SIZE
  const tcp = await new Promise<Transfer>((res) => {
    const t = performance.now();
    let n = 0;
    const c = net.connect(RAW_PORT, bIp, () => c.write(String(size)));
    const cut = setTimeout(() => c.destroy(), DEADLINE_S * 1000);
    c.on('data', (d) => (n += d.length));
    c.on('close', () => (clearTimeout(cut), res(toTransfer(n, performance.now() - t, size))));
    c.on('error', () => {});
  });
  return { pingMs: { p50: pct(rtts, 50), min: Math.min(...rtts), max: Math.max(...rtts) }, tcp };
}

/** Plain HTTP over TCP: cold request, warm latency, download, upload. */
async function httpClient(bIp: string): Promise<unknown> {
  const base = { host: bIp, port: APP_PORT };
  const get = (path: string, agent: http.Agent | false, deadline = Infinity) =>
    new Promise<{ bytes: number; firstByteMs: number; ms: number }>((res, rej) => {
      const t = performance.now();
      let first = 0;
      const req = http.get({ ...base, path, agent }, (r) => {
        let n = 0;
        r.on('data', (c: Buffer) => {
          if (!first) first = performance.now() - t;
          n += c.length;
          if (performance.now() - t > deadline) req.destroy();
        });
        const done = () => res({ bytes: n, firstByteMs: first, ms: performance.now() - t });
        r.on('end', done);
        r.on('aborted', done);
        r.on('error', done);
      });
      req.on('error', rej);
    });
  const cold = await get('/small', false);
  const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });
  await get('/small', keep);
  const lat: number[] = [];
  for (let i = 0; i < WARM_GETS; i++) lat.push((await get('/small', keep)).ms);
  const d = await get(`/big?bytes=${SIZE}`, keep, DEADLINE_S * 1000).catch(() => ({
    bytes: 0,
    ms: 1,
  }));
  const down = toTransfer(d.bytes, d.ms, SIZE);
  const up = await new Promise<Transfer>((res) => {
    const t = performance.now();
    let sent = 0;
    const req = http.request({ ...base, path: '/upload', method: 'POST', agent: keep }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => res(toTransfer(Number(body), performance.now() - t, SIZE)));
    });
    req.on('error', () => res(toTransfer(sent, performance.now() - t, SIZE)));
    const pump = () => {
      while (sent < SIZE && performance.now() - t < DEADLINE_S * 1000) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  keep.destroy();
  return {
    coldFirstByteMs: cold.firstByteMs,
    warmMs: { p50: pct(lat, 50), p90: pct(lat, 90) },
    download: down,
    upload: up,
  };
}

/** Through Peerway with the Node tunnel client: cold open, warm latency, download, upload. */
async function peerwayClient(publicUrl: string, engine: string): Promise<unknown> {
  const { connectTunnel } = await import('@peerway/node-agent/client');
  const drain = async (body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>, t: number) => {
    let n = 0;
    let first = 0;
    for await (const c of body as AsyncIterable<Uint8Array>) {
      if (!first) first = performance.now() - t;
      n += c.byteLength;
      if (performance.now() - t > DEADLINE_S * 1000) break;
    }
    return { n, first };
  };
  const t0 = performance.now();
  const tun = await connectTunnel({
    serverUrl: publicUrl,
    service: `bench-${engine}`,
    engine: engine as 'werift',
    timeoutMs: 30_000,
  });
  const openMs = performance.now() - t0;
  const firstRes = await tun.request('GET', '/small');
  const first = await drain(firstRes.body, t0);
  const coldFirstByteMs = first.first || performance.now() - t0;
  const lat: number[] = [];
  for (let i = 0; i < WARM_GETS; i++) {
    const t = performance.now();
    await drain((await tun.request('GET', '/small')).body, t);
    lat.push(performance.now() - t);
  }
  let t = performance.now();
  const d = await drain((await tun.request('GET', `/big?bytes=${SIZE}`)).body, t);
  const download = toTransfer(d.n, performance.now() - t, SIZE);
  let up: Transfer = { mbps: NaN, bytes: 0, complete: false };
  if (download.complete) {
    // (a cut download leaves its stream open on the channel: no upload after it)
    let sent = 0;
    t = performance.now();
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= SIZE || performance.now() - t > DEADLINE_S * 1000) return c.close();
        sent += chunk.length;
        c.enqueue(chunk);
      },
    });
    const r = await tun.request('POST', '/upload', { body });
    let txt = '';
    for await (const c of r.body as unknown as AsyncIterable<Uint8Array>)
      txt += Buffer.from(c).toString();
    up = toTransfer(Number(txt), performance.now() - t, SIZE);
  }
  tun.close();
  return {
    engine: tun.engine ?? engine,
    openMs,
    timings: tun.timings,
    coldFirstByteMs,
    warmMs: { p50: pct(lat, 50), p90: pct(lat, 90) },
    download,
    upload: up,
  };
}

async function clientRole(what: string, arg: string, engine: string): Promise<void> {
  const out =
    what === 'check'
      ? await checkClient(arg, Number(engine))
      : what === 'http'
        ? await httpClient(arg)
        : await peerwayClient(arg, engine);
  console.log(`result ${JSON.stringify({ ...(out as object), cpuS: selfCpuS() })}`);
  process.exit(0);
}

// ------------------------------------------- Chromium ⇄ Chromium through the link

/**
 * The browsers' own channel through the link: one Chromium at each end, the
 * offer and answer passed by this process (outside the link, complete SDP, no
 * trickle), a data channel from a to b. Page scripts are strings (tsx would
 * wrap named helpers in a __name() the page lacks).
 */
const PAGE = `
window.pw = {
  gathered(pc) {
    return pc.iceGatheringState === 'complete' ? Promise.resolve() :
      new Promise((r) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r()));
  },
  async offer() {
    this.t0 = performance.now();
    const pc = (this.pc = new RTCPeerConnection());
    const dc = (this.dc = pc.createDataChannel('x'));
    dc.binaryType = 'arraybuffer';
    this.opened = new Promise((r) => (dc.onopen = r));
    dc.onmessage = (m) => this.onmsg && this.onmsg(m.data);
    await pc.setLocalDescription();
    await this.gathered(pc);
    return pc.localDescription.toJSON();
  },
  async accept(answer) {
    await this.pc.setRemoteDescription(answer);
    await this.opened;
    return performance.now() - this.t0;
  },
  async answer(offer) {
    const pc = (this.pc = new RTCPeerConnection());
    pc.ondatachannel = (e) => {
      const dc = e.channel;
      dc.binaryType = 'arraybuffer';
      dc.onmessage = async (m) => {
        if (typeof m.data !== 'string') return;
        if (m.data.startsWith('ping')) return dc.send(m.data);
        const n = Number(m.data.slice(5));
        dc.bufferedAmountLowThreshold = 1 << 20;
        const msg = new Uint8Array(64 * 1024);
        for (let sent = 0; sent < n && dc.readyState === 'open'; sent += msg.length) {
          if (dc.bufferedAmount > 4 << 20) await new Promise((r) => (dc.onbufferedamountlow = r));
          dc.send(msg);
        }
      };
    };
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription();
    await this.gathered(pc);
    return pc.localDescription.toJSON();
  },
  async pings(n) {
    const xs = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await new Promise((r) => ((this.onmsg = r), this.dc.send('ping' + i)));
      xs.push(performance.now() - t);
    }
    this.onmsg = null;
    xs.sort((a, b) => a - b);
    return xs[Math.floor(n / 2)];
  },
  async download(n, deadlineMs) {
    let got = 0;
    const t = performance.now();
    await new Promise((r) => {
      this.onmsg = (d) => {
        got += d.byteLength || 0;
        if (got >= n || performance.now() - t > deadlineMs) r();
      };
      this.dc.send('send ' + n);
      setTimeout(r, deadlineMs + 1000);
    });
    this.onmsg = null;
    return { bytes: got, ms: performance.now() - t };
  },
  close() { this.pc && this.pc.close(); },
};`;

interface ChromiumPair {
  a: Page;
  b: Page;
  close(): Promise<void>;
}

async function chromiumPair(aNs: string, bNs: string): Promise<ChromiumPair> {
  const { launchChromium } = await import('../../e2e/support/chromium');
  const { CHROMIUM_PATH } = await import('../../e2e/support/chromium');
  const dir = mkdtempSync(join(tmpdir(), 'pw-benchlink-chromium-'));
  const browsers: Browser[] = [];
  const pages: Page[] = [];
  try {
    for (const ns of [aNs, bNs]) {
      const wrapper = join(dir, `chromium-${ns}.sh`);
      writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM_PATH} "$@"\n`);
      chmodSync(wrapper, 0o755);
      // host candidates as addresses, not mDNS names nobody here resolves
      const b = await launchChromium(['--disable-features=WebRtcHideLocalIpsWithMdns'], wrapper);
      browsers.push(b);
      const page = await b.newPage();
      await page.evaluate(PAGE);
      pages.push(page);
    }
  } catch (e) {
    for (const b of browsers) await b.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    a: pages[0]!,
    b: pages[1]!,
    async close() {
      for (const b of browsers) await b.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One round of the browsers' channel: open, warm ping-pong, download of SIZE. */
async function chromiumRound(pair: ChromiumPair): Promise<{
  openMs: number;
  warmMs: { p50: number };
  download: Transfer;
}> {
  try {
    const offer = await pair.a.evaluate('pw.offer()');
    const answer = await pair.b.evaluate(`pw.answer(${JSON.stringify(offer)})`);
    const openMs = (await pair.a.evaluate(`pw.accept(${JSON.stringify(answer)})`)) as number;
    const p50 = (await pair.a.evaluate(`pw.pings(${WARM_GETS})`)) as number;
    const d = (await pair.a.evaluate(`pw.download(${SIZE}, ${DEADLINE_S * 1000})`)) as {
      bytes: number;
      ms: number;
    };
    return { openMs, warmMs: { p50 }, download: toTransfer(d.bytes, d.ms, SIZE) };
  } finally {
    await pair.a.evaluate('pw.close()').catch(() => {});
    await pair.b.evaluate('pw.close()').catch(() => {});
  }
}

// ---------------------------------------------------------------- orchestrator

/** BENCH_LINK_CPU_PROF=dir: each client role writes a V8 CPU profile there. */
const profArgs = process.env.BENCH_LINK_CPU_PROF
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_LINK_CPU_PROF}`]
  : [];
const nodeArgs = ['--conditions=peerway-source', '--import', 'tsx', SELF];

async function main(): Promise<void> {
  const { labAvailable } = await import('../../e2e/netlab/lab');
  const { gccAvailable, ShapedLink } = await import('../../e2e/netlab/link');
  for (const a of [labAvailable(), gccAvailable()])
    if (!a.ok) {
      console.error(`bench:link cannot run here: ${a.why}`);
      process.exit(1);
    }
  type Link = Awaited<ReturnType<typeof ShapedLink.create>>;
  // every link still up goes on Ctrl-C or SIGTERM too (teardown() handles the normal path)
  const live = new Set<Link>();
  const makeLink = async (o: Parameters<typeof ShapedLink.create>[0]) => {
    const l = await ShapedLink.create(o);
    live.add(l);
    return l;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      void Promise.all([...live].map((l) => l.destroy())).then(() => process.exit(130));
    });
  const date = new Date().toISOString();
  const load0 = loadavg();
  const busy0 = machineBusyS();
  const wall0 = performance.now();
  let ownCpuS = 0; // CPU of this benchmark's processes (clients, server, agents, forwarder)

  /** Runs a client role in the link's a end; its parsed result. */
  const client = (link: Link, what: string, arg: string, engine = ''): Promise<never> =>
    new Promise((res, rej) => {
      const args = [...profArgs, ...nodeArgs, 'client', what, arg, engine];
      const p = link.spawn(link.aNs, process.execPath, args, {
        cwd: ROOT,
        env: { ...process.env, PEERWAY_LOG_LEVEL: 'warn' },
      });
      let out = '';
      let err = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const kill = setTimeout(() => p.kill('SIGKILL'), (DEADLINE_S * 3 + 60) * 1000);
      p.once('exit', (code) => {
        clearTimeout(kill);
        const m = /^result (.*)$/m.exec(out);
        if (!m)
          return rej(new Error(`client ${what} ${engine} failed (${code}):\n${err.slice(-2000)}`));
        const r = JSON.parse(m[1]!) as { cpuS: number };
        ownCpuS += r.cpuS;
        res(r as never);
      });
    });
  const nsCpuS = (ns: string) => {
    try {
      return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .split(/\s+/)
        .filter(Boolean)
        .reduce((s, pid) => s + procCpuS(Number(pid)), 0);
    } catch {
      return 0;
    }
  };

  const servers = new Map<Link, ChildProcess>();
  /** Stops the server role (it removes its temp dirs), then the link. */
  const teardown = async (link: Link) => {
    const p = servers.get(link);
    if (p && p.exitCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
    }
    await link.destroy();
    live.delete(link);
  };
  async function startServer(link: Link, engines: string[]): Promise<string> {
    const p = link.spawn(
      link.bNs,
      process.execPath,
      [...nodeArgs, 'server', link.bIp, engines.join(',')],
      {
        cwd: ROOT,
        env: { ...process.env, PEERWAY_LOG_LEVEL: 'warn' },
      },
    );
    servers.set(link, p);
    let out = '';
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`server role did not start:\n${err}`)), 60_000);
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^ready (.*)$/m.exec(out);
        if (m) (clearTimeout(t), res((JSON.parse(m[1]!) as { publicUrl: string }).publicUrl));
      });
      p.once('exit', (c) => (clearTimeout(t), rej(new Error(`server role exited ${c}:\n${err}`))));
    });
  }

  // the forwarder's ceiling: TCP through it with no rate limit
  const ceilingLink = await makeLink({ rttMs: 20, rateMbit: 0 });
  let ceiling: { tcp: Transfer; forwarderCpuPct: number; pingMs: unknown };
  try {
    const srv = await startServer(ceilingLink, []);
    void srv;
    const c0 = ceilingLink.forwarderCpuS();
    const t = performance.now();
    const r = (await client(ceilingLink, 'check', ceilingLink.bIp, String(CEILING_SIZE))) as {
      tcp: Transfer;
      pingMs: unknown;
    };
    const fwdPct = ((ceilingLink.forwarderCpuS() - c0) / ((performance.now() - t) / 1000)) * 100;
    ownCpuS += nsCpuS(ceilingLink.bNs) + ceilingLink.forwarderCpuS();
    ceiling = { tcp: r.tcp, pingMs: r.pingMs, forwarderCpuPct: fwdPct };
    console.log(
      `forwarder ceiling (20 ms RTT, no rate limit): TCP ${((r.tcp.mbps * 8) | 0).toString()} Mbit/s, forwarder CPU ${fwdPct.toFixed(0)} % of a core over the check`,
    );
  } finally {
    await teardown(ceilingLink);
  }

  type HttpR = {
    coldFirstByteMs: number;
    warmMs: { p50: number };
    download: Transfer;
    upload: Transfer;
  };
  type PwR = HttpR & { openMs: number; timings: Record<string, number>; engine: string };
  type ChanR = Awaited<ReturnType<typeof chromiumRound>>;
  let pair: ChromiumPair | null = null;
  const profiles: unknown[] = [];
  for (const prof of PROFILES) {
    console.log(`\n== ${prof.name}`);
    const link = await makeLink(prof);
    const busyP0 = machineBusyS();
    const wallP0 = performance.now();
    try {
      const publicUrl = await startServer(link, ENGINES);
      const c0 = link.forwarderCpuS();
      const tc = performance.now();
      const check = (await client(link, 'check', link.bIp, String(SIZE))) as {
        tcp: Transfer;
        pingMs: { p50: number };
      };
      const fwdPct = ((link.forwarderCpuS() - c0) / ((performance.now() - tc) / 1000)) * 100;
      console.log(
        `link check: ping p50 ${check.pingMs.p50.toFixed(1)} ms, TCP ${(check.tcp.mbps * 8).toFixed(0)} Mbit/s, forwarder CPU ${fwdPct.toFixed(0)} %`,
      );
      const refs: HttpR[] = [];
      const chans: ChanR[] = [];
      pair = CHROMIUM ? await chromiumPair(link.aNs, link.bNs) : null;
      const pw: Record<string, PwR[]> = Object.fromEntries(ENGINES.map((e) => [e, []]));
      const errors: string[] = [];
      for (let i = 0; i < RUNS; i++) {
        refs.push((await client(link, 'http', link.bIp)) as HttpR);
        const h = refs.at(-1)!;
        console.log(
          `  round ${i + 1} http: first byte ${num(h.coldFirstByteMs, 0)} ms, warm ${num(h.warmMs.p50, 1)} ms, down ${num(h.download.mbps, 1)} MB/s, up ${num(h.upload.mbps, 1)} MB/s`,
        );
        if (pair) {
          try {
            const c = await chromiumRound(pair);
            chans.push(c);
            console.log(
              `  round ${i + 1} Chromium⇄Chromium channel: open ${num(c.openMs, 0)} ms, warm ${num(c.warmMs.p50, 1)} ms, down ${num(c.download.mbps, 1)} MB/s${c.download.complete ? '' : ' (cut)'}`,
            );
          } catch (err) {
            errors.push(`chromium: ${(err as Error).message.split('\n')[0]}`);
            console.log(
              `  round ${i + 1} chromium: failed: ${(err as Error).message.slice(0, 300)}`,
            );
          }
        }
        for (const e of ENGINES) {
          try {
            const r = (await client(link, 'peerway', publicUrl, e)) as PwR;
            pw[e]!.push(r);
            console.log(
              `  round ${i + 1} ${e}: first byte ${num(r.coldFirstByteMs, 0)} ms, warm ${num(r.warmMs.p50, 1)} ms, down ${num(r.download.mbps, 1)} MB/s${r.download.complete ? '' : ' (cut)'}, up ${num(r.upload.mbps, 1)} MB/s${r.upload.complete ? '' : ' (cut)'}`,
            );
          } catch (err) {
            errors.push(`${e}: ${(err as Error).message.split('\n')[0]}`);
            console.log(`  round ${i + 1} ${e}: failed: ${(err as Error).message.slice(0, 300)}`);
          }
        }
      }
      ownCpuS += nsCpuS(link.bNs) + link.forwarderCpuS();
      const fstats = await link.stats();
      const wallS = (performance.now() - wallP0) / 1000;
      const busyPct = ((machineBusyS() - busyP0) / wallS / cpus().length) * 100;
      const chan = {
        openMs: stat(chans.map((r) => r.openMs)),
        warmP50Ms: stat(chans.map((r) => r.warmMs.p50)),
        downloadMBps: stat(chans.map((r) => r.download.mbps)),
        downloadsCut: chans.filter((r) => !r.download.complete).length,
      };
      const ref = {
        coldFirstByteMs: stat(refs.map((r) => r.coldFirstByteMs)),
        warmP50Ms: stat(refs.map((r) => r.warmMs.p50)),
        downloadMBps: stat(refs.map((r) => r.download.mbps)),
        uploadMBps: stat(refs.map((r) => r.upload.mbps)),
      };
      const engines = Object.fromEntries(
        ENGINES.map((e) => {
          const rs = pw[e]!;
          const s = {
            openMs: stat(rs.map((r) => r.openMs)),
            openPhasesMs: Object.fromEntries(
              ['tokenMs', 'signalingMs', 'iceMs', 'dtlsSctpMs'].map((k) => [
                k,
                stat(rs.map((r) => r.timings[k]!)).median,
              ]),
            ),
            coldFirstByteMs: stat(rs.map((r) => r.coldFirstByteMs)),
            warmP50Ms: stat(rs.map((r) => r.warmMs.p50)),
            downloadMBps: stat(rs.map((r) => r.download.mbps)),
            uploadMBps: stat(rs.filter((r) => r.upload.bytes > 0).map((r) => r.upload.mbps)),
            downloadsCut: rs.filter((r) => !r.download.complete).length,
            uploadsCut: rs.filter((r) => !r.upload.complete).length,
          };
          return [
            e,
            {
              ...s,
              coldFirstByteRtts: s.coldFirstByteMs.median / prof.rttMs,
              vsChromiumChannel: {
                open: s.openMs.median / chan.openMs.median,
                warm: s.warmP50Ms.median / chan.warmP50Ms.median,
                download: s.downloadMBps.median / chan.downloadMBps.median,
              },
              ratio: {
                coldFirstByte: s.coldFirstByteMs.median / ref.coldFirstByteMs.median,
                warm: s.warmP50Ms.median / ref.warmP50Ms.median,
                download: s.downloadMBps.median / ref.downloadMBps.median,
                upload: s.uploadMBps.median / ref.uploadMBps.median,
              },
              runs: rs,
            },
          ];
        }),
      );
      profiles.push({
        ...prof,
        check: { ...check, forwarderCpuPct: fwdPct },
        forwarder: fstats,
        reference: { ...ref, runs: refs },
        chromiumChannel: { ...chan, runs: chans },
        engines,
        errors,
        machineBusyPct: busyPct,
        loadAverageEnd: loadavg(),
      });
    } finally {
      await pair?.close();
      pair = null;
      await teardown(link);
    }
  }

  const wallS = (performance.now() - wall0) / 1000;
  const busyS = machineBusyS() - busy0;
  ownCpuS += selfCpuS();
  const results = {
    date,
    machine: `${cpus().length} cores, Node ${process.version}`,
    runs: RUNS,
    sizeMiB: SIZE / 1048576,
    deadlineS: DEADLINE_S,
    notes:
      'RTT figures: each direction gets half the RTT and the full loss percentage. Peerway: Node tunnel client (werift) to the agent on each engine, host candidates (no relay). Ratios: Peerway ÷ plain HTTP over TCP through the same link in the same run (latencies: > 1 is slower; throughput: < 1 is slower).',
    load: {
      loadAverageStart: load0,
      loadAverageEnd: loadavg(),
      machineBusyPct: (busyS / wallS / cpus().length) * 100,
      otherBusyPct: (Math.max(0, busyS - ownCpuS) / wallS / cpus().length) * 100,
    },
    forwarderCeiling: ceiling,
    profiles,
  };
  printTable(results as unknown as Results);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  // BENCH_LINK_OUT=path: write there instead (experiments that must not replace a result)
  const out =
    process.env.BENCH_LINK_OUT ??
    join(
      ROOT,
      'bench/results',
      `link-${process.env.BENCH_LINK_CUSTOM ? 'custom-' : ''}${date.slice(0, 10)}.json`,
    );
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${out}`);
}

type S = { median: number; min: number; max: number };
interface Results {
  date: string;
  load: { loadAverageStart: number[]; machineBusyPct: number; otherBusyPct: number };
  forwarderCeiling: { tcp: Transfer; forwarderCpuPct: number };
  profiles: {
    name: string;
    rttMs: number;
    check: { pingMs: { p50: number }; tcp: Transfer; forwarderCpuPct: number };
    forwarder: { lateUsMean: number; lateUsMax: number; wakeLateUsMean: number };
    reference: { coldFirstByteMs: S; warmP50Ms: S; downloadMBps: S; uploadMBps: S };
    chromiumChannel: { openMs: S; warmP50Ms: S; downloadMBps: S };
    engines: Record<
      string,
      {
        coldFirstByteMs: S;
        warmP50Ms: S;
        downloadMBps: S;
        uploadMBps: S;
        coldFirstByteRtts: number;
        openPhasesMs: Record<string, number>;
        ratio: Record<string, number>;
        vsChromiumChannel: Record<string, number>;
      }
    >;
    machineBusyPct: number;
  }[];
}

function printTable(r: Results): void {
  const f = (s: S, d = 1) =>
    Number.isNaN(s.median)
      ? '—'
      : `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
  const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '—');
  console.log(
    `\nPeerway through shaped links, ${r.date.slice(0, 16)}Z; machine busy ${r.load.machineBusyPct.toFixed(0)} % (other than this benchmark ${r.load.otherBusyPct.toFixed(0)} %), load average at start ${r.load.loadAverageStart[0]!.toFixed(2)}`,
  );
  console.log(
    `forwarder ceiling: TCP ${(r.forwarderCeiling.tcp.mbps * 8).toFixed(0)} Mbit/s at 20 ms RTT with no rate limit (forwarder ${r.forwarderCeiling.forwarderCpuPct.toFixed(0)} % of a core)\n`,
  );
  for (const p of r.profiles) {
    console.log(
      `### ${p.name}: ping ${p.check.pingMs.p50.toFixed(1)} ms, raw TCP ${(p.check.tcp.mbps * 8).toFixed(0)} Mbit/s (forwarder ${p.check.forwarderCpuPct.toFixed(0)} % of a core), forwarder late by ${num(p.forwarder.lateUsMean / 1000, 2)} ms on average (max ${num(p.forwarder.lateUsMax / 1000, 1)}; first of a wake-up ${num(p.forwarder.wakeLateUsMean / 1000, 2)}), machine busy ${p.machineBusyPct.toFixed(0)} %`,
    );
    const engines = Object.entries(p.engines);
    console.log(
      '| measure | HTTP over TCP | Chromium⇄Chromium channel | ' +
        engines.map(([e]) => `Peerway (${e} agent) | ÷ HTTP | ÷ channel`).join(' | ') +
        ' |',
    );
    console.log('|---|---|---|' + engines.map(() => '---|---|---').join('|') + '|');
    type K = 'coldFirstByteMs' | 'warmP50Ms' | 'downloadMBps' | 'uploadMBps';
    const row = (label: string, k: K, rk: string, ck: 'openMs' | K | null, d: number) =>
      console.log(
        `| ${label} | ${f(p.reference[k], d)} | ${ck && ck in p.chromiumChannel ? f(p.chromiumChannel[ck as 'openMs'], d) : '—'} | ` +
          engines
            .map(
              ([, e]) =>
                `${f(e[k], d)} | ${x(e.ratio[rk]!)} | ${ck ? x(e.vsChromiumChannel[rk === 'coldFirstByte' ? 'open' : rk]!) : '—'}`,
            )
            .join(' | ') +
          ' |',
      );
    row(
      'cold open → first byte, ms (channel: open only)',
      'coldFirstByteMs',
      'coldFirstByte',
      'openMs',
      0,
    );
    row('warm small GET p50, ms (channel: ping-pong)', 'warmP50Ms', 'warm', 'warmP50Ms', 1);
    row('download, MB/s', 'downloadMBps', 'download', 'downloadMBps', 1);
    row('upload, MB/s', 'uploadMBps', 'upload', null, 1);
    console.log(
      '| open phases: token / signaling / ICE / DTLS+SCTP, ms | — | — | ' +
        engines
          .map(
            ([, e]) =>
              `${['tokenMs', 'signalingMs', 'iceMs', 'dtlsSctpMs'].map((k) => (e.openPhasesMs[k] ?? NaN).toFixed(0)).join(' / ')} | | `,
          )
          .join(' | ') +
        ' |',
    );
    if (p.rttMs > 0)
      console.log(
        `| cold first byte, RTTs | ${(p.reference.coldFirstByteMs.median / p.rttMs).toFixed(1)} | ${(p.chromiumChannel.openMs.median / p.rttMs).toFixed(1)} | ` +
          engines.map(([, e]) => `${e.coldFirstByteRtts.toFixed(1)} | | `).join(' | ') +
          ' |',
      );
    console.log('');
  }
}

const [role, a1, a2, a3] = process.argv.slice(2);
if (role === 'server') await serverRole(a1!, (a2 ?? '').split(',').filter(Boolean));
else if (role === 'client') await clientRole(a1!, a2!, a3 ?? '');
else {
  await main();
  process.exit(0);
}
