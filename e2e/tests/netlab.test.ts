/** The NAT lab itself: it builds, translates like the routers it models, and tears down. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { Lab, labAvailable, PUBLIC_HOST_IP, type Home } from '../netlab/lab';

const avail = labAvailable();
// Outside CI (not root, no ip netns) the lab is skipped with the reason; in CI it
// must run, so a machine that cannot build it fails instead of skipping.
if (!avail.ok && process.env.CI) throw new Error(`the NAT lab cannot run here: ${avail.why}`);
if (!avail.ok) console.warn(`[netlab] skipped: ${avail.why}`);

const ECHO = `const d=require('dgram');for(const p of [5000,5001]){const s=d.createSocket('udp4');s.on('message',(m,r)=>s.send(r.address+':'+r.port,r.port,r.address));s.bind(p,'${PUBLIC_HOST_IP}')}
require('net').createServer(c=>c.end(c.remoteAddress)).listen(5002,'${PUBLIC_HOST_IP}');console.log('ready')`;
const PROBE = `const s=require('dgram').createSocket('udp4');const seen=[];s.on('message',m=>{seen.push(String(m));if(seen.length===2){console.log(JSON.stringify(seen));process.exit(0)}});
s.bind(40000,()=>{for(const p of [5000,5001])s.send('x',p,'${PUBLIC_HOST_IP}')});setTimeout(()=>{console.log(JSON.stringify(seen));process.exit(0)},2000)`;
const TCP = `const c=require('net').connect(5002,'${PUBLIC_HOST_IP}');c.on('data',d=>{console.log(String(d));process.exit(0)});c.on('error',e=>{console.log('error '+e.code);process.exit(0)});setTimeout(()=>{console.log('timeout');process.exit(0)},3000)`;

describe.skipIf(!avail.ok)('NAT lab', () => {
  let lab: Lab;
  let cone: Home;
  let sym: Home;
  let noUdp: Home;
  beforeAll(async () => {
    lab = new Lab();
    cone = lab.addHome('cone', { nat: 'cone' });
    sym = lab.addHome('sym', { nat: 'symmetric' });
    noUdp = lab.addHome('noudp', { nat: 'cone', blockUdp: true });
    const echo = lab.spawn(lab.internetNs, process.execPath, ['-e', ECHO]);
    await new Promise<void>((r) => echo.stdout!.once('data', () => r()));
  });
  afterAll(() => lab?.destroy());

  const probe = (h: Home, script: string) =>
    execFileSync('ip', ['netns', 'exec', h.hostNs, process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 10_000,
    }).trim();

  it('cone NAT translates to the router address and keeps one mapping per socket', () => {
    const seen = JSON.parse(probe(cone, PROBE)) as string[];
    expect(seen).toHaveLength(2);
    expect(seen.every((s) => s.startsWith(`${cone.wanIp}:`))).toBe(true);
    expect(new Set(seen.map((s) => s.split(':')[1])).size).toBe(1);
    expect(seen[0]).not.toContain(cone.lanIp);
  });

  it('symmetric NAT gives each destination its own external port', () => {
    const seen = JSON.parse(probe(sym, PROBE)) as string[];
    expect(seen).toHaveLength(2);
    expect(seen.every((s) => s.startsWith(`${sym.wanIp}:`))).toBe(true);
    expect(new Set(seen.map((s) => s.split(':')[1])).size).toBe(2);
  });

  it('a UDP-blocking router drops UDP but passes TCP', () => {
    expect(JSON.parse(probe(noUdp, PROBE))).toEqual([]);
    expect(probe(noUdp, TCP)).toBe(noUdp.wanIp);
  });

  it('the internet cannot reach into a home (no route to the LANs)', () => {
    expect(() =>
      execFileSync('ip', ['netns', 'exec', lab.internetNs, 'ip', 'route', 'get', cone.lanIp], {
        encoding: 'utf8',
        stdio: 'pipe',
      }),
    ).toThrow(/unreachable/i);
  });
});

describe.skipIf(!avail.ok)('NAT lab teardown', () => {
  it('removes every namespace, also after a failure while building', async () => {
    const lab = new Lab();
    try {
      lab.addHome('a', { nat: 'cone' });
      lab.addHome('b', { nat: 'cone' });
      lab.addHome('c', { nat: 'cone' });
      expect(() => lab.addHome('d', { nat: 'cone' })).toThrow(/room for 3/);
      expect(lab.leftovers().length).toBe(7);
    } finally {
      await lab.destroy();
    }
    expect(lab.leftovers()).toEqual([]);
  });
});
