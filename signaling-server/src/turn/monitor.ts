/**
 * TURN health for the admin view:
 *  - a reachability probe: a real TURN allocation (werift's STUN messages)
 *    to each configured `turn:` URL with fresh REST credentials, deleted
 *    right after. It proves the relay answers and accepts the shared secret,
 *    tells "wrong secret" from "no answer", and reports its round trip.
 *  - coturn's own figures when it reports to Redis (`redis-statsdb`):
 *    allocations opened, refreshed and deleted, and the bytes they moved, from
 *    its pub/sub channels `turn/realm/<realm>/user/<user>/allocation/<id>/…`.
 * Without Redis, the admin view still has what the peers report per session
 * (relayed share and bytes: ws/stats.ts).
 */
import { Redis } from 'ioredis';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import {
  Message,
  classes,
  makeIntegrityKey,
  methods,
  parseMessage,
  type TurnProtocol,
} from 'werift';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logger';
import { turnCredentials } from '../ws/ice';

/** Probes are repeated at most this often (the admin page asks more often). */
export const PROBE_EVERY_MS = 30_000;
export const PROBE_TIMEOUT_MS = 3000;

export interface TurnProbe {
  url: string;
  ok: boolean;
  /** Time to a granted allocation, ms. */
  rttMs: number | null;
  error: string | null;
  at: number;
}

export interface TurnStatus {
  probes: TurnProbe[];
  /** From coturn's Redis reports; null when coturn does not report to this server's Redis. */
  coturn: { activeAllocations: number; relayedBytes: number; lastEventAt: number | null } | null;
}

/** `turn:host:port?transport=udp|tcp` → what a client needs; null for `turns:` (TLS is not probed). */
export function parseTurnUrl(
  url: string,
): { host: string; port: number; transport: 'udp' | 'tcp' } | null {
  const m = /^turn:(\[[^\]]+\]|[^:?]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i.exec(url.trim());
  if (!m) return null;
  return {
    host: m[1]!.replace(/^\[|\]$/g, ''),
    port: m[2] ? Number(m[2]) : 3478,
    transport: (m[3]?.toLowerCase() as 'udp' | 'tcp' | undefined) ?? 'udp',
  };
}

/** werift's value for REQUESTED-TRANSPORT = UDP (protocol 17 in the top byte). */
const UDP_TRANSPORT = 0x11000000;

/**
 * STUN request/response over UDP (retransmitted every 500 ms) or TCP
 * (messages back to back, framed by their length field). The messages
 * themselves are werift's: this is only the exchange, which werift's TURN
 * client does not expose in a way that answers "wrong secret" quickly (it
 * retries refused credentials for ~13 s).
 */
async function stunChannel(target: { host: string; port: number; transport: 'udp' | 'tcp' }) {
  const waiting = new Map<string, (m: Message) => void>();
  const deliver = (data: Buffer) => {
    const m = parseMessage(data);
    if (m) waiting.get(m.transactionIdHex)?.(m);
  };
  let write: (b: Buffer) => void;
  let close: () => void;
  if (target.transport === 'udp') {
    const sock = createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
    sock.on('message', deliver);
    sock.on('error', () => {});
    write = (b) => sock.send(b, target.port, target.host);
    close = () => sock.close();
  } else {
    const sock = connect(target.port, target.host);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 20 && buf.length >= 20 + buf.readUInt16BE(2)) {
        const n = 20 + buf.readUInt16BE(2);
        deliver(buf.subarray(0, n));
        buf = buf.subarray(n);
      }
    });
    sock.on('error', () => {});
    write = (b) => sock.write(b);
    close = () => sock.destroy();
  }
  return {
    roundTrip(m: Message, deadline: number): Promise<Message> {
      return new Promise((resolve, reject) => {
        const bytes = Buffer.from(m.bytes);
        const again = setInterval(() => target.transport === 'udp' && write(bytes), 500);
        const timer = setTimeout(
          () => (clearInterval(again), reject(new Error('no answer (unreachable?)'))),
          Math.max(1, deadline - performance.now()),
        );
        waiting.set(m.transactionIdHex, (r) => {
          clearInterval(again);
          clearTimeout(timer);
          resolve(r);
        });
        write(bytes);
      });
    },
    close,
  };
}

/** One allocation with fresh REST credentials, bounded in time, deleted right after. */
export async function probeTurn(url: string, secret: string, now = Date.now()): Promise<TurnProbe> {
  const target = parseTurnUrl(url);
  if (!target)
    return { url, ok: false, rttMs: null, error: 'not probed (TLS or bad URL)', at: now };
  const { username, credential } = turnCredentials(secret, 'peerway-probe', now, 60);
  const started = performance.now();
  const deadline = started + PROBE_TIMEOUT_MS;
  const ch = await stunChannel(target);
  const allocate = () =>
    new Message(methods.ALLOCATE, classes.REQUEST)
      .setAttribute('REQUESTED-TRANSPORT', UDP_TRANSPORT)
      .setAttribute('LIFETIME', 60);
  try {
    // The first, unauthenticated request is refused with the realm and a nonce.
    const challenge = await ch.roundTrip(allocate(), deadline);
    const realm = challenge.getAttributeValue('REALM') as string | undefined;
    const nonce = challenge.getAttributeValue('NONCE') as Buffer | undefined;
    if (!realm || !nonce)
      return { url, ok: false, rttMs: null, error: 'not a TURN server', at: now };
    const key = makeIntegrityKey(username, realm, credential);
    const signed = (m: Message) =>
      m
        .setAttribute('USERNAME', username)
        .setAttribute('REALM', realm)
        .setAttribute('NONCE', nonce)
        .addMessageIntegrity(key);
    const res = await ch.roundTrip(signed(allocate()), deadline);
    const rttMs = Math.round((performance.now() - started) * 10) / 10;
    if (res.messageClass === classes.RESPONSE) {
      // Delete it at once (Refresh, lifetime 0) so probes never hold allocations.
      const refresh = new Message(methods.REFRESH, classes.REQUEST).setAttribute('LIFETIME', 0);
      await ch.roundTrip(signed(refresh), performance.now() + 1000).catch(() => {});
      return { url, ok: true, rttMs, error: null, at: now };
    }
    const [code, reason] = (res.getAttributeValue('ERROR-CODE') as
      [number, string] | undefined) ?? [0, ''];
    const error =
      code === 401
        ? 'refused our credentials (is the shared secret the same on both sides?)'
        : `refused: ${code} ${reason}`.trim();
    return { url, ok: false, rttMs, error, at: now };
  } catch (err) {
    return { url, ok: false, rttMs: null, error: (err as Error).message.slice(0, 200), at: now };
  } finally {
    ch.close();
  }
}

/**
 * Deletes an allocation on the relay (a Refresh with lifetime 0, RFC 8656
 * §7), then closes the socket: werift's close() only does the latter, which
 * leaves the allocation counted on the relay until it expires.
 */
export async function release(client: TurnProtocol): Promise<void> {
  try {
    const refresh = new Message(methods.REFRESH, classes.REQUEST).setAttribute('LIFETIME', 0);
    await client.request(refresh, client.server);
  } catch {
    // already gone
  } finally {
    await client.close().catch(() => {});
  }
}

const STATUS_RE =
  /^turn\/realm\/[^/]+\/user\/[^/]+\/allocation\/([^/]+)\/(status|traffic|total_traffic)$/;

export class TurnMonitor {
  private probes: TurnProbe[] = [];
  private probing: Promise<void> | null = null;
  private sub: Redis | null = null;
  private readonly active = new Set<string>();
  private relayedBytes = 0;
  private lastEventAt: number | null = null;

  constructor(
    private readonly cfg: {
      turnUrls: string[];
      turnSecret?: string | undefined;
      redisUrl?: string | undefined;
    },
    private readonly log: Logger,
  ) {}

  /** Listens to coturn's reports when there is a Redis. */
  async start(): Promise<void> {
    if (!this.cfg.redisUrl) return;
    this.sub = new Redis(this.cfg.redisUrl, { maxRetriesPerRequest: 2 });
    this.sub.on('error', (err: Error) =>
      this.log.warn({ err: err.message }, 'TURN stats redis error'),
    );
    this.sub.on('pmessage', (_p: string, channel: string, message: string) =>
      this.onEvent(channel, message),
    );
    await this.sub.psubscribe('turn/realm/*');
  }

  /** One report from coturn (exported for tests of the parsing). */
  onEvent(channel: string, message: string): void {
    const m = STATUS_RE.exec(channel);
    if (!m) return;
    const [, id, kind] = m;
    this.lastEventAt = Date.now();
    if (kind === 'status') {
      if (/^deleted/.test(message)) this.active.delete(id!);
      else if (/^(new|refreshed)/.test(message)) this.active.add(id!);
    } else if (kind === 'traffic') {
      // "rcvp=N, rcvb=N, sentp=N, sentb=N": bytes since the last report
      const rcvb = /rcvb=(\d+)/.exec(message);
      const sentb = /sentb=(\d+)/.exec(message);
      this.relayedBytes += Number(rcvb?.[1] ?? 0) + Number(sentb?.[1] ?? 0);
    }
  }

  /** The current view; probes again if the last one is older than PROBE_EVERY_MS. */
  async status(now = Date.now()): Promise<TurnStatus> {
    const stale = this.probes.length === 0 || now - this.probes[0]!.at > PROBE_EVERY_MS;
    if (this.cfg.turnSecret && this.cfg.turnUrls.length > 0 && stale) {
      this.probing ??= Promise.all(this.cfg.turnUrls.map((u) => probeTurn(u, this.cfg.turnSecret!)))
        .then((p) => {
          this.probes = p;
        })
        .finally(() => (this.probing = null));
      await this.probing;
    }
    return {
      probes: this.probes,
      coturn: this.sub
        ? {
            activeAllocations: this.active.size,
            relayedBytes: this.relayedBytes,
            lastEventAt: this.lastEventAt,
          }
        : null,
    };
  }

  /**
   * The same figures for Prometheus, read at scrape time: probe result and
   * round trip per TURN URL, and coturn's allocations when it reports.
   */
  registerMetrics(registry: Registry): void {
    const ok: Gauge<'url'> = new Gauge({
      name: 'peerway_turn_probe_ok',
      help: 'Last TURN probe per URL: 1 allocation granted, 0 failed',
      labelNames: ['url'] as const,
      registers: [registry],
      collect: async () => {
        ok.reset();
        for (const p of (await this.status()).probes) ok.set({ url: p.url }, p.ok ? 1 : 0);
      },
    });
    const rtt: Gauge<'url'> = new Gauge({
      name: 'peerway_turn_probe_seconds',
      help: 'Last TURN probe per URL: time to a granted allocation',
      labelNames: ['url'] as const,
      registers: [registry],
      collect: () => {
        rtt.reset();
        for (const p of this.probes) if (p.rttMs !== null) rtt.set({ url: p.url }, p.rttMs / 1000);
      },
    });
    const allocations: Gauge = new Gauge({
      name: 'peerway_turn_allocations',
      help: 'Active allocations as coturn reports them to Redis (absent when it does not)',
      registers: [registry],
      collect: () => {
        allocations.reset();
        if (this.sub) allocations.set(this.active.size);
      },
    });
    const relayed: Counter = new Counter({
      name: 'peerway_turn_relayed_bytes_total',
      help: 'Bytes coturn reports it relayed (redis-statsdb traffic events)',
      registers: [registry],
      collect: () => {
        const inc = this.relayedBytes - this.reportedBytes;
        if (inc > 0) relayed.inc(inc);
        this.reportedBytes = this.relayedBytes;
      },
    });
  }
  private reportedBytes = 0;

  async close(): Promise<void> {
    this.sub?.disconnect();
    await this.probing?.catch(() => {});
  }
}
