/**
 * A shaped link between two namespaces: delay and loss in user space (this
 * kernel has no netem), rate limits with the kernel's tbf.
 *
 *   a (198.51.100.2/30) ── veth ── link ns ── veth ── b (198.51.100.6/30)
 *                                     │
 *                                    tun0 ⇄ delayfwd (delayfwd.c)
 *
 * In the link namespace, policy routing sends every packet that arrives from
 * either veth into `tun0` (`ip rule iif la|lb lookup 100`, table 100's default
 * route is `dev tun0`). The forwarder holds each packet for half the RTT (or
 * drops it with the loss probability) and writes it back into the TUN; what
 * comes out of the TUN is routed by the main table to the other veth, whose
 * egress is a tbf at the link's rate. So each direction gets rttMs/2 of delay,
 * lossPct of independent loss and rateMbit of rate.
 *
 * Addresses come from 198.51.100.0/24 only and nothing is bridged to the
 * machine's interfaces. `destroy()` kills the forwarder and what was spawned
 * in the namespaces and deletes them, also after a failure while building.
 */
import { execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { NamespaceSet } from './netns';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';

const SRC = join(import.meta.dirname, 'delayfwd.c');
const ROOT = resolve(import.meta.dirname, '../..');

export const LINK_A_IP = '198.51.100.2';
export const LINK_B_IP = '198.51.100.6';

export interface ShapedLinkOptions {
  /** Round-trip delay added by the link, ms (each direction gets half). */
  rttMs: number;
  /** Rate of each direction, Mbit/s (tbf on the egress of both veths); 0: no limit. */
  rateMbit: number;
  /** Loss per packet, per direction, percent. */
  lossPct?: number;
  /** The tbf queue, in ms at the link's rate (default: one RTT, at least 10 ms). */
  bufferMs?: number;
  /** The forwarder's queue, packets (default 32768: 64 MiB of slots). */
  queuePackets?: number;
  /** The forwarder's random seed (default: random). */
  seed?: number;
  /** The forwarder's timer slack, us (default 50: the kernel's; fewer wake-ups at high rates). */
  timerSlackUs?: number;
}

/** The forwarder's counters (from its JSON line). */
export interface ForwarderStats {
  rx: number;
  tx: number;
  lost: number;
  queueDrops: number;
  tooLong: number;
  writeErrors: number;
  rxBytes: number;
  txBytes: number;
  maxQueue: number;
  queued: number;
  /** How late packets left against their due time, us (a burst leaves one write after another). */
  lateUsMean: number;
  lateUsMax: number;
  /** The same for the first packet of each wake-up: the timer's and the scheduler's lateness. */
  wakeLateUsMean: number;
  wakeLateUsMax: number;
}

function sh(args: string[]): string {
  return execFileSync(args[0]!, args.slice(1), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Whether the forwarder can be built here (gcc), and if not, why. */
export function gccAvailable(): { ok: boolean; why: string } {
  try {
    sh(['gcc', '--version']);
    return { ok: true, why: '' };
  } catch {
    return { ok: false, why: 'gcc is not installed (the link forwarder is compiled on demand)' };
  }
}

/**
 * Compiles delayfwd.c with gcc -O2 into node_modules/.cache/peerway/, once
 * per version of the source (the file name carries its hash).
 */
export function forwarderBinary(): string {
  const src = readFileSync(SRC);
  const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
  const dir = join(ROOT, 'node_modules/.cache/peerway');
  const bin = join(dir, `delayfwd-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  sh(['gcc', '-O2', '-Wall', '-o', tmp, SRC]);
  renameSync(tmp, bin);
  return bin;
}

/** A link's shape without its size options: what a lab home's uplink takes. */
export type LinkShape = Pick<ShapedLinkOptions, 'rttMs' | 'rateMbit' | 'lossPct' | 'bufferMs'>;

/** A tbf at the shape's rate on `dev`'s egress, with a queue of bufferMs (default one RTT, ≥ 10 ms). */
function addTbf(run: (args: string[]) => void, dev: string, o: LinkShape): void {
  if (o.rateMbit === 0) return;
  const bytesPerS = (o.rateMbit * 1e6) / 8;
  const bufferMs = o.bufferMs ?? Math.max(10, o.rttMs);
  const limit = Math.max(64 * 1024, Math.round((bytesPerS * bufferMs) / 1000));
  const burst = Math.max(16 * 1024, Math.round(bytesPerS / 1000)); // ~1 ms at the rate
  run([
    'tc',
    'qdisc',
    'add',
    'dev',
    dev,
    'root',
    'tbf',
    'rate',
    `${o.rateMbit}mbit`,
    'burst',
    String(burst),
    'limit',
    String(limit),
  ]);
}

/** A running delayfwd on `tun0` of a namespace: its counters and CPU time. */
class Forwarder {
  private out = '';
  private ready = false;
  private readonly statLines: string[] = [];
  private constructor(private readonly proc: ChildProcess) {}

  /** Starts the forwarder through `spawnIn` (which runs it in the namespace) and waits for it. */
  static async start(
    spawnIn: (cmd: string, args: string[]) => ChildProcess,
    o: ShapedLinkOptions,
  ): Promise<Forwarder> {
    const { rttMs, lossPct = 0 } = o;
    const args = ['-i', 'tun0', '-d', String((rttMs * 1000) / 2), '-l', String(lossPct / 100)];
    if (o.queuePackets) args.push('-q', String(o.queuePackets));
    if (o.seed) args.push('-s', String(o.seed));
    if (o.timerSlackUs !== undefined) args.push('-j', String(o.timerSlackUs));
    const proc = spawnIn(forwarderBinary(), args);
    const f = new Forwarder(proc);
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`delayfwd did not start: ${err}`)), 5000);
      proc.stdout!.on('data', (d: Buffer) => {
        f.out += d.toString();
        let nl;
        while ((nl = f.out.indexOf('\n')) >= 0) {
          const line = f.out.slice(0, nl);
          f.out = f.out.slice(nl + 1);
          if (line === 'ready') ((f.ready = true), clearTimeout(t), res());
          else if (line.startsWith('{')) f.statLines.push(line);
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(t);
        if (!f.ready) rej(new Error(`delayfwd exited (${code}): ${err}`));
      });
    });
    return f;
  }

  async stats(): Promise<ForwarderStats> {
    if (this.proc.exitCode !== null) throw new Error('the forwarder is not running');
    const seen = this.statLines.length;
    this.proc.kill('SIGUSR1');
    const deadline = Date.now() + 2000;
    while (this.statLines.length <= seen) {
      if (Date.now() > deadline) throw new Error('the forwarder did not answer SIGUSR1');
      await new Promise((r) => setTimeout(r, 10));
    }
    return JSON.parse(this.statLines[seen]!) as ForwarderStats;
  }

  cpuS(): number {
    // fields 14 and 15 of /proc/PID/stat (utime, stime), in clock ticks (100/s on Linux);
    // `ip netns exec` execs the forwarder, so the pid is the forwarder's
    const f = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  }
}

/** The TUN and the policy routing that send what arrives on `ifaces` through the forwarder. */
function addTun(run: (args: string[]) => void, ifaces: string[]): void {
  for (const k of ['all', 'default'])
    for (const [s, v] of [
      ['rp_filter', '0'],
      ['send_redirects', '0'],
    ])
      run(['sysctl', '-q', '-w', `net.ipv4.conf.${k}.${s}=${v}`]);
  run(['ip', 'tuntap', 'add', 'dev', 'tun0', 'mode', 'tun']);
  run(['ip', 'link', 'set', 'tun0', 'mtu', '1500', 'txqueuelen', '10000', 'up']);
  for (const d of [...ifaces, 'tun0'])
    run(['sysctl', '-q', '-w', `net.ipv4.conf.${d}.rp_filter=0`]);
  run(['ip', 'route', 'add', 'default', 'dev', 'tun0', 'table', '100']);
  ifaces.forEach((d, i) =>
    run(['ip', 'rule', 'add', 'iif', d, 'lookup', '100', 'pref', String(100 + i)]),
  );
}

/**
 * Shapes a NAT lab home's uplink (lab.ts `Lab.shapeHome`): the router's own
 * namespace gets the TUN, and what arrives on `lan` or `wan` goes through the
 * forwarder before the router forwards it on. Conntrack sees each packet once,
 * on the pass that crosses the NAT (lan → tun0 and tun0 → lan are NOTRACK), so
 * the MASQUERADE rules and the inbound firewall work as before. tbf on `wan`
 * (upload) and `lan` (download).
 */
export async function shapeRouter(
  inNs: (ns: string, args: string[]) => string,
  spawnIn: (ns: string, cmd: string, args: string[]) => ChildProcess,
  routerNs: string,
  lanCidr: string,
  shape: LinkShape,
): Promise<void> {
  const run = (args: string[]) => void inNs(routerNs, args);
  forwarderBinary();
  addTun(run, ['lan', 'wan']);
  run(['iptables', '-t', 'raw', '-A', 'PREROUTING', '-i', 'lan', '-j', 'NOTRACK']);
  run(['iptables', '-t', 'raw', '-A', 'PREROUTING', '-i', 'tun0', '-d', lanCidr, '-j', 'NOTRACK']);
  for (const d of ['wan', 'lan']) addTbf(run, d, shape);
  await Forwarder.start((cmd, args) => spawnIn(routerNs, cmd, args), shape);
}

export class ShapedLink {
  readonly prefix = `pwk${randomBytes(2).toString('hex')}`;
  /** The "a" end (198.51.100.2), e.g. the visitor. */
  readonly aNs = `${this.prefix}-a`;
  /** The middle namespace holding tun0 and the forwarder. */
  readonly linkNs = `${this.prefix}-link`;
  /** The "b" end (198.51.100.6), e.g. the servers. */
  readonly bNs = `${this.prefix}-b`;
  readonly aIp = LINK_A_IP;
  readonly bIp = LINK_B_IP;
  private readonly netns = new NamespaceSet();
  private fwd: Forwarder | null = null;

  private constructor(readonly opts: ShapedLinkOptions) {}

  /** Builds the namespaces, the tbf qdiscs and starts the forwarder. */
  static async create(opts: ShapedLinkOptions): Promise<ShapedLink> {
    const link = new ShapedLink(opts);
    try {
      await link.build();
      return link;
    } catch (e) {
      await link.destroy();
      throw e;
    }
  }

  /** Runs a command inside a namespace and returns its output. */
  inNs(ns: string, args: string[]): string {
    return sh(['ip', 'netns', 'exec', ns, ...args]);
  }

  private addNs(ns: string): void {
    sh(['ip', 'netns', 'add', ns]);
    this.netns.names.push(ns);
    this.inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
  }

  private async build(): Promise<void> {
    const { rttMs, rateMbit, lossPct = 0 } = this.opts;
    if (!(rttMs >= 0) || !(rateMbit >= 0) || !(lossPct >= 0 && lossPct <= 100))
      throw new Error(`bad link options ${JSON.stringify(this.opts)}`);
    forwarderBinary(); // compile errors before anything is built
    for (const ns of [this.aNs, this.linkNs, this.bNs]) this.addNs(ns);
    const L = this.linkNs;
    // the ends: a0 in a, la in link; b0 in b, lb in link
    for (const [end, ns, inner, ip, gw] of [
      ['a', this.aNs, 'la', this.aIp, '198.51.100.1'],
      ['b', this.bNs, 'lb', this.bIp, '198.51.100.5'],
    ] as const) {
      this.inNs(ns, ['ip', 'link', 'add', `${end}0`, 'type', 'veth', 'peer', 'name', inner]);
      this.inNs(ns, ['ip', 'link', 'set', inner, 'netns', L]);
      this.inNs(ns, ['ip', 'addr', 'add', `${ip}/30`, 'dev', `${end}0`]);
      this.inNs(ns, ['ip', 'link', 'set', `${end}0`, 'up']);
      this.inNs(ns, ['ip', 'route', 'add', 'default', 'via', gw]);
      this.inNs(L, ['ip', 'addr', 'add', `${gw}/30`, 'dev', inner]);
    }
    this.inNs(L, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    addTun((args) => void this.inNs(L, args), ['la', 'lb']);
    for (const d of ['la', 'lb']) {
      this.inNs(L, ['ip', 'link', 'set', d, 'up']);
      addTbf((args) => this.inNs(L, args), d, this.opts);
    }
    this.fwd = await Forwarder.start((cmd, args) => this.spawn(L, cmd, args), this.opts);
  }

  /** The forwarder's counters now. */
  stats(): Promise<ForwarderStats> {
    return this.fwd!.stats();
  }

  /** The forwarder's CPU time so far (user + system), seconds. */
  forwarderCpuS(): number {
    return this.fwd!.cpuS();
  }

  /** Starts a process inside one of the link's namespaces; it is killed by `destroy()`. */
  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return this.netns.spawn(ns, cmd, args, opts);
  }

  /** Kills what the link started and deletes its namespaces (idempotent). */
  destroy(): Promise<void> {
    return this.netns.destroy();
  }

  /** Namespaces of this link that still exist (for tests of the teardown). */
  leftovers(): string[] {
    return this.netns.leftovers();
  }
}
