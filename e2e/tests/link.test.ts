/**
 * The shaped link checked against its own settings: the RTT it adds, the
 * loss it applies, a TCP transfer through it arrives whole, and it tears
 * down. Correctness only (generous bounds); its speed is in bench:link.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { Lab, labAvailable, PUBLIC_HOST_IP, type Home } from '../netlab/lab';
import { gccAvailable, ShapedLink } from '../netlab/link';

const lab = labAvailable();
const gcc = gccAvailable();
const avail = lab.ok ? gcc : lab;
// like the NAT lab: in CI a machine that cannot build namespaces fails; one without gcc skips
if (!lab.ok && process.env.CI) throw new Error(`the shaped link cannot run here: ${lab.why}`);
if (!avail.ok) console.warn(`[link] skipped: ${avail.why}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const ECHO_PORT = 7000;
const TCP_PORT = 7001;

/** A UDP echo and a TCP server sending `bytes` bytes of a known pattern, in the b end. */
const SERVERS = (ip: string, bytes: number) => `
const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(${ECHO_PORT},'${ip}');
const b=Buffer.alloc(${bytes});for(let i=0;i<b.length;i++)b[i]=(i*31+(i>>10))&255;
require('net').createServer(c=>c.end(b)).listen(${TCP_PORT},'${ip}',()=>console.log('ready'));`;

/** Sequential UDP pings: prints the RTTs, ms. */
const PING = (ip: string, n: number) => `
const s=require('dgram').createSocket('udp4');const rt=[];let t;
const go=()=>{t=performance.now();s.send('p',${ECHO_PORT},'${ip}')};
s.on('message',()=>{rt.push(performance.now()-t);if(rt.length<${n})go();else{console.log(JSON.stringify(rt));process.exit(0)}});
go();setTimeout(()=>{console.log(JSON.stringify(rt));process.exit(0)},10000);`;

/** `n` UDP probes, 1 ms apart; prints how many distinct ones came back. */
const BURST = (ip: string, n: number) => `
const s=require('dgram').createSocket('udp4');const seen=new Set();
s.on('message',m=>seen.add(String(m)));
let i=0;const iv=setInterval(()=>{s.send(String(i++),${ECHO_PORT},'${ip}');if(i>=${n})clearInterval(iv)},1);
setTimeout(()=>{console.log(seen.size);process.exit(0)},${n}+2000);`;

/** Downloads from the TCP server; prints the byte count and the sha256. */
const FETCH = (ip: string) => `
const h=require('crypto').createHash('sha256');let n=0;
const c=require('net').connect(${TCP_PORT},'${ip}');c.on('data',d=>{n+=d.length;h.update(d)});
c.on('end',()=>{console.log(n+' '+h.digest('hex'));process.exit(0)});
c.on('error',e=>{console.log('error '+e.code);process.exit(0)});`;

const expectedSha = (bytes: number) => {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + (i >> 10)) & 255;
  return execFileSync('sha256sum', { input: b, encoding: 'utf8' }).split(' ')[0];
};

async function withServers(link: ShapedLink, bytes: number): Promise<void> {
  const srv = link.spawn(link.bNs, process.execPath, ['-e', SERVERS(link.bIp, bytes)]);
  await new Promise<void>((r, j) => {
    srv.stdout!.on('data', (d: Buffer) => /ready/.test(d.toString()) && r());
    srv.once('exit', (c) => j(new Error(`servers exited ${c}`)));
  });
}

const run = (link: ShapedLink, script: string) =>
  link.inNs(link.aNs, [process.execPath, '-e', script]).trim();

describe.skipIf(!avail.ok)('shaped link, 40 ms RTT at 50 Mbit/s', () => {
  const RTT = 40;
  const BYTES = 4 * 1024 * 1024;
  let link: ShapedLink;
  beforeAll(async () => {
    link = await ShapedLink.create({ rttMs: RTT, rateMbit: 50 });
    await withServers(link, BYTES);
  });
  afterAll(() => link?.destroy());

  it('adds the configured round trip, not much more', async () => {
    const rtts = JSON.parse(run(link, PING(link.bIp, 20))) as number[];
    expect(rtts).toHaveLength(20);
    // the first ping also resolves neighbours; the rest are the link's RTT
    // never faster than the link; the median near it (a loaded machine may delay one ping)
    for (const r of rtts.slice(1)) expect(r).toBeGreaterThanOrEqual(RTT);
    expect(median(rtts.slice(1))).toBeLessThan(RTT + 30);
    const st = await link.stats();
    expect(st.lost).toBe(0);
    expect(st.tx).toBeGreaterThanOrEqual(40);
  });

  it('carries a TCP transfer whole', async () => {
    const [n, sha] = run(link, FETCH(link.bIp)).split(' ');
    expect(Number(n)).toBe(BYTES);
    expect(sha).toBe(expectedSha(BYTES));
    const st = await link.stats();
    expect(st.queueDrops).toBe(0);
    expect(st.txBytes).toBeGreaterThan(BYTES);
  });

  it('removes its namespaces', async () => {
    const other = await ShapedLink.create({ rttMs: 10, rateMbit: 10 });
    expect(other.leftovers()).toHaveLength(3);
    await other.destroy();
    expect(other.leftovers()).toEqual([]);
  });
});

describe.skipIf(!avail.ok)('shaped link with 20 % loss', () => {
  let link: ShapedLink;
  beforeAll(async () => {
    link = await ShapedLink.create({ rttMs: 10, rateMbit: 100, lossPct: 20 });
    await withServers(link, 1024 * 1024);
  });
  afterAll(() => link?.destroy());

  it('loses some probes but not all, and a TCP transfer still arrives whole', async () => {
    const back = Number(run(link, BURST(link.bIp, 500)));
    // each probe crosses twice: about 64 % come back
    expect(back).toBeGreaterThan(0);
    expect(back).toBeLessThan(500);
    const st = await link.stats();
    expect(st.lost).toBeGreaterThan(0);
    const [n, sha] = run(link, FETCH(link.bIp)).split(' ');
    expect(Number(n)).toBe(1024 * 1024);
    expect(sha).toBe(expectedSha(1024 * 1024));
  });
});

describe.skipIf(!avail.ok)('a NAT lab home behind a shaped uplink', () => {
  const RTT = 30;
  const BYTES = 2 * 1024 * 1024;
  let lab: Lab;
  let home: Home;
  beforeAll(async () => {
    lab = new Lab();
    home = lab.addHome('far', { nat: 'cone' });
    await lab.shapeHome(home, { rttMs: RTT, rateMbit: 50 });
    // the echo answers with the address it saw, so the NAT shows
    const echo = lab.spawn(lab.internetNs, process.execPath, [
      '-e',
      `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(r.address,r.port,r.address));s.bind(${ECHO_PORT},'${PUBLIC_HOST_IP}');
const b=Buffer.alloc(${BYTES});for(let i=0;i<b.length;i++)b[i]=(i*31+(i>>10))&255;
require('net').createServer(c=>c.end(b)).listen(${TCP_PORT},'${PUBLIC_HOST_IP}',()=>console.log('ready'));`,
    ]);
    await new Promise((r) => echo.stdout!.once('data', r));
  });
  afterAll(() => lab?.destroy());

  const inHome = (script: string) =>
    execFileSync('ip', ['netns', 'exec', home.hostNs, process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    }).trim();

  it('adds the RTT to the way out, still NATs, and carries TCP whole', () => {
    const rtts = JSON.parse(inHome(PING(PUBLIC_HOST_IP, 10))) as number[];
    expect(rtts).toHaveLength(10);
    // never faster than the link; the median near it (a loaded machine may delay one ping)
    for (const r of rtts.slice(1)) expect(r).toBeGreaterThanOrEqual(RTT);
    expect(median(rtts.slice(1))).toBeLessThan(RTT + 30);
    const seen = inHome(
      `const s=require('dgram').createSocket('udp4');s.on('message',m=>{console.log(String(m));process.exit(0)});s.send('x',${ECHO_PORT},'${PUBLIC_HOST_IP}');setTimeout(()=>process.exit(1),3000)`,
    );
    expect(seen).toBe(home.wanIp);
    const [n, sha] = inHome(FETCH(PUBLIC_HOST_IP)).split(' ');
    expect(Number(n)).toBe(BYTES);
    expect(sha).toBe(expectedSha(BYTES));
  });

  it('still drops what the internet sends unasked', () => {
    // the internet has no route into the LAN; a packet to the router's WAN address is dropped
    const out = lab.inNs(lab.internetNs, [
      process.execPath,
      '-e',
      `const c=require('net').connect(${TCP_PORT},'${home.wanIp}');c.on('connect',()=>{console.log('open');process.exit(0)});c.on('error',e=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('timeout');process.exit(0)},1500)`,
    ]);
    expect(out.trim()).toBe('timeout');
  });
});
