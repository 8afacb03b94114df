/**
 * The NAT lab: an "internet" segment and home networks behind router
 * namespaces that NAT with iptables, built with `ip netns`, veth pairs and a
 * bridge — as root, on this machine only. Addresses come from the
 * documentation ranges: the internet is 203.0.113.0/24, each home LAN a /26
 * of 192.0.2.0/24. Nothing is bridged to the machine's real interfaces, and
 * `destroy()` removes every namespace (and the processes started in them),
 * also after a failure.
 *
 * NAT kinds:
 *  - `cone`: MASQUERADE keeping source ports; Linux maps a socket to the same
 *    external port for every destination (endpoint-independent mapping), and
 *    its address-and-port-dependent filtering opens as soon as both sides
 *    send, which is what ICE does: hole punching works.
 *  - `symmetric`: MASQUERADE --random-fully: every new destination gets a
 *    random external port, so the server-reflexive address learnt from STUN
 *    is useless to the peer; only a relay connects two of these.
 *  - `blockUdp`: the router drops every forwarded UDP packet (TURN over TCP
 *    is then the only way out).
 */
import { execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { NamespaceSet } from './netns';
import { randomBytes } from 'node:crypto';
import { shapeRouter, type LinkShape } from './link';

export const INTERNET_CIDR = '203.0.113.0/24';
/** Where the lab's public services (signaling server, coturn) live. */
export const PUBLIC_HOST_IP = '203.0.113.10';

export type NatKind = 'cone' | 'symmetric';

export interface Home {
  name: string;
  /** The namespace of the machine behind the router. */
  hostNs: string;
  routerNs: string;
  wanIp: string;
  lanIp: string;
}

function sh(args: string[]): string {
  return execFileSync(args[0]!, args.slice(1), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Whether this machine can build the lab, and if not, why. */
export function labAvailable(): { ok: boolean; why: string } {
  if (process.getuid?.() !== 0)
    return { ok: false, why: 'the NAT lab needs root (ip netns, iptables)' };
  try {
    sh(['ip', '-V']);
  } catch {
    return { ok: false, why: 'iproute2 (`ip`) is not installed' };
  }
  try {
    sh(['iptables', '--version']);
  } catch {
    return { ok: false, why: 'iptables is not installed' };
  }
  const probe = `pwprobe${randomBytes(3).toString('hex')}`;
  try {
    sh(['ip', 'netns', 'add', probe]);
    sh(['ip', 'netns', 'exec', probe, 'iptables', '-t', 'nat', '-L']);
    return { ok: true, why: '' };
  } catch (e) {
    return {
      ok: false,
      why: `network namespaces or iptables NAT are not allowed here: ${(e as Error).message.split('\n')[0]}`,
    };
  } finally {
    try {
      sh(['ip', 'netns', 'del', probe]);
    } catch {
      // was never made
    }
  }
}

export class Lab {
  readonly prefix = `pw${randomBytes(2).toString('hex')}`;
  readonly internetNs = `${this.prefix}-inet`;
  private readonly netns = new NamespaceSet();
  private homes = 0;

  /** Builds the internet segment with the public host address on its bridge. */
  constructor() {
    this.addNs(this.internetNs);
    this.inNs(this.internetNs, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    this.inNs(this.internetNs, ['ip', 'addr', 'add', `${PUBLIC_HOST_IP}/24`, 'dev', 'br0']);
    this.inNs(this.internetNs, ['ip', 'link', 'set', 'br0', 'up']);
    this.inNs(this.internetNs, ['ip', 'link', 'set', 'lo', 'up']);
  }

  private addNs(ns: string): void {
    sh(['ip', 'netns', 'add', ns]);
    this.netns.names.push(ns);
  }

  /** Runs a command inside a namespace and returns its output. */
  inNs(ns: string, args: string[]): string {
    return sh(['ip', 'netns', 'exec', ns, ...args]);
  }

  /** Adds a home: a router (NAT) on the internet bridge and a host behind it. */
  addHome(name: string, opts: { nat: NatKind; blockUdp?: boolean }): Home {
    const i = ++this.homes;
    if (i > 3) throw new Error('the lab has room for 3 homes (/26 each of 192.0.2.0/24)');
    const routerNs = `${this.prefix}-r${i}`;
    const hostNs = `${this.prefix}-h${i}`;
    const wanIp = `203.0.113.${20 + i}`;
    const lanBase = 64 * i;
    const routerLan = `192.0.2.${lanBase + 1}`;
    const lanIp = `192.0.2.${lanBase + 2}`;
    this.addNs(routerNs);
    this.addNs(hostNs);
    const wanA = `${this.prefix}w${i}a`;
    const wanB = `${this.prefix}w${i}b`;
    const lanA = `${this.prefix}l${i}a`;
    const lanB = `${this.prefix}l${i}b`;
    // WAN: router <-> internet bridge. Both ends are created inside lab namespaces.
    this.inNs(routerNs, ['ip', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', wanB]);
    this.inNs(routerNs, ['ip', 'link', 'set', wanB, 'netns', this.internetNs]);
    this.inNs(this.internetNs, ['ip', 'link', 'set', wanB, 'master', 'br0']);
    this.inNs(this.internetNs, ['ip', 'link', 'set', wanB, 'up']);
    this.inNs(routerNs, ['ip', 'addr', 'add', `${wanIp}/24`, 'dev', 'wan']);
    this.inNs(routerNs, ['ip', 'link', 'set', 'wan', 'up']);
    this.inNs(routerNs, ['ip', 'link', 'set', 'lo', 'up']);
    // LAN: router <-> host
    this.inNs(hostNs, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', lanA]);
    this.inNs(hostNs, ['ip', 'link', 'set', lanA, 'netns', routerNs]);
    this.inNs(routerNs, ['ip', 'link', 'set', lanA, 'name', 'lan']);
    this.inNs(routerNs, ['ip', 'addr', 'add', `${routerLan}/26`, 'dev', 'lan']);
    this.inNs(routerNs, ['ip', 'link', 'set', 'lan', 'up']);
    this.inNs(hostNs, ['ip', 'addr', 'add', `${lanIp}/26`, 'dev', 'eth0']);
    this.inNs(hostNs, ['ip', 'link', 'set', 'eth0', 'up']);
    this.inNs(hostNs, ['ip', 'link', 'set', 'lo', 'up']);
    this.inNs(hostNs, ['ip', 'route', 'add', 'default', 'via', routerLan]);
    // the router forwards and NATs
    this.inNs(routerNs, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    const masq = ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE'];
    this.inNs(routerNs, opts.nat === 'symmetric' ? [...masq, '--random-fully'] : masq);
    if (opts.blockUdp)
      this.inNs(routerNs, ['iptables', '-A', 'FORWARD', '-p', 'udp', '-j', 'DROP']);
    // A home router's inbound firewall. Without it, a peer's punching packet
    // that arrives before this side has sent anything is delivered to the
    // router itself; nobody answers, but conntrack keeps an entry for it, and
    // when the host then sends to that peer the NAT finds its port taken and
    // picks another: the cone turns symmetric for exactly that peer and hole
    // punching never succeeds. Dropping unsolicited inbound packets leaves no
    // entry behind.
    for (const rule of [
      ['INPUT', '-i', 'lo', '-j', 'ACCEPT'],
      ['INPUT', '-i', 'lan', '-j', 'ACCEPT'],
      ['INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'],
      ['INPUT', '-p', 'icmp', '-j', 'ACCEPT'],
      ['INPUT', '-j', 'DROP'],
      ['FORWARD', '-i', 'lan', '-j', 'ACCEPT'],
      [
        'FORWARD',
        '-i',
        'wan',
        '-m',
        'conntrack',
        '--ctstate',
        'ESTABLISHED,RELATED',
        '-j',
        'ACCEPT',
      ],
      ['FORWARD', '-i', 'wan', '-j', 'DROP'],
    ]) {
      this.inNs(routerNs, ['iptables', '-A', ...rule]);
    }
    void lanB;
    void wanA;
    return { name, hostNs, routerNs, wanIp, lanIp };
  }

  /**
   * Puts a shaped link (delay and loss from the user-space forwarder, rate
   * from tbf; e2e/netlab/link.ts) on a home's uplink, in its router. Needs gcc.
   */
  shapeHome(home: Home, shape: LinkShape): Promise<void> {
    const base = Number(home.lanIp.split('.')[3]) & ~63;
    return shapeRouter(
      (ns, args) => this.inNs(ns, args),
      (ns, cmd, args) => this.spawn(ns, cmd, args),
      home.routerNs,
      `192.0.2.${base}/26`,
      shape,
    );
  }

  /** Starts a process inside one of the lab's namespaces; it is killed by `destroy()`. */
  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return this.netns.spawn(ns, cmd, args, opts);
  }

  /** Kills what the lab started and deletes its namespaces (idempotent). */
  destroy(): Promise<void> {
    return this.netns.destroy();
  }

  /** Namespaces of this lab that still exist (for tests of the teardown). */
  leftovers(): string[] {
    return this.netns.leftovers();
  }
}
