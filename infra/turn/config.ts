/**
 * Renders coturn's configuration from turnserver.conf.template. No npm
 * package generates coturn configs, so this is the one place that
 * does. Every option a deployment must get right is a typed field here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Peer addresses the relay refuses (coturn `denied-peer-ip`, ranges): the
 * IANA special-purpose blocks that are not the public internet.
 */
export const DENIED_PEER_RANGES: readonly string[] = [
  '0.0.0.0-0.255.255.255', // "this" network
  '10.0.0.0-10.255.255.255', // private
  '100.64.0.0-100.127.255.255', // CGNAT
  '127.0.0.0-127.255.255.255', // loopback
  '169.254.0.0-169.254.255.255', // link-local (cloud metadata lives here)
  '172.16.0.0-172.31.255.255', // private
  '192.0.0.0-192.0.0.255', // IETF protocol assignments
  '192.0.2.0-192.0.2.255', // documentation
  '192.88.99.0-192.88.99.255', // 6to4 relay anycast
  '192.168.0.0-192.168.255.255', // private
  '198.18.0.0-198.19.255.255', // benchmarking
  '198.51.100.0-198.51.100.255', // documentation
  '203.0.113.0-203.0.113.255', // documentation
  '224.0.0.0-239.255.255.255', // multicast
  '240.0.0.0-255.255.255.255', // reserved, broadcast
  '::1', // loopback
  '::ffff:0.0.0.0-::ffff:255.255.255.255', // IPv4-mapped: would bypass the v4 list
  '64:ff9b::-64:ff9b::ffff:ffff', // NAT64
  '::', // unspecified
  '2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', // documentation
  'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', // unique local
  'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', // link-local
  'ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', // multicast
];

export interface TurnConfig {
  /** Shared secrets, newest first; several allow rotation without downtime. */
  secrets: string[];
  realm: string;
  port: number;
  listeningIps: string[];
  relayIps: string[];
  /** Public address when the relay sits behind 1:1 NAT (cloud VMs): `public/private` or `public`. */
  externalIp?: string;
  minPort: number;
  maxPort: number;
  userQuota: number;
  totalQuota: number;
  /** Bytes per second per allocation; 0 = unlimited. */
  maxBps: number;
  /** Ranges that override the deny list (tests: the NAT lab's documentation ranges only). */
  allowedPeerRanges?: string[];
  /** Tests on loopback only: coturn refuses loopback peers otherwise. */
  allowLoopbackPeers?: boolean;
  tls?: { port: number; cert: string; pkey: string };
  /** Allocation status and traffic events into Redis (coturn's --redis-statsdb). */
  redisStatsDb?: { host: string; port: number; db?: number; password?: string };
  pidFile: string;
  /** A file, or "stdout". */
  logFile?: string;
}

export const TURN_DEFAULTS = {
  realm: 'peerway',
  port: 3478,
  minPort: 49152,
  maxPort: 65535,
  userQuota: 12,
  totalQuota: 1200,
  maxBps: 0,
} as const;

const lines = (key: string, values: readonly string[]) =>
  values.map((v) => `${key}=${v}`).join('\n');

/** The TURN host's own concrete addresses (not wildcards), public and private. */
function ownAddresses(c: TurnConfig): string[] {
  const ext = c.externalIp ? c.externalIp.split('/') : [];
  return [...new Set([...c.listeningIps, ...c.relayIps, ...ext])].filter(
    (ip) => ip !== '0.0.0.0' && ip !== '::',
  );
}

/** The coturn config file text for `c`. */
export function renderTurnConfig(c: TurnConfig): string {
  if (c.secrets.length === 0) throw new Error('TURN needs at least one shared secret');
  for (const s of c.secrets)
    if (s.length < 16 || /\s/.test(s))
      throw new Error('TURN secrets must be 16+ characters without spaces');
  if (c.minPort > c.maxPort) throw new Error('min-port must not exceed max-port');
  const template = readFileSync(join(import.meta.dirname, 'turnserver.conf.template'), 'utf8');
  const r = c.redisStatsDb;
  const values: Record<string, string> = {
    secrets: lines('static-auth-secret', c.secrets),
    realm: c.realm,
    tls: c.tls
      ? `tls-listening-port=${c.tls.port}\ncert=${c.tls.cert}\npkey=${c.tls.pkey}\nno-tlsv1\nno-tlsv1_1`
      : 'no-tls\nno-dtls',
    port: String(c.port),
    listeningIps: lines('listening-ip', c.listeningIps),
    relayIps: lines('relay-ip', c.relayIps),
    externalIp: c.externalIp ? `external-ip=${c.externalIp}` : '',
    minPort: String(c.minPort),
    maxPort: String(c.maxPort),
    userQuota: String(c.userQuota),
    totalQuota: String(c.totalQuota),
    maxBps: String(c.maxBps),
    // The relay's own addresses too: otherwise a client could reach services
    // listening on the TURN host itself through its public address.
    deniedPeers: lines('denied-peer-ip', [...DENIED_PEER_RANGES, ...ownAddresses(c)]),
    allowedPeers: lines('allowed-peer-ip', c.allowedPeerRanges ?? []),
    loopback: c.allowLoopbackPeers ? 'allow-loopback-peers' : '',
    redis: r
      ? `redis-statsdb="ip=${r.host} port=${r.port} dbname=${r.db ?? 0}${r.password ? ` password=${r.password}` : ''} connect_timeout=5"`
      : '',
    pidFile: c.pidFile,
    log:
      c.logFile === 'stdout' || !c.logFile
        ? 'log-file=stdout\nsimple-log'
        : `log-file=${c.logFile}\nsimple-log`,
  };
  return template.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in values)) throw new Error(`template placeholder {{${k}}} has no value`);
    return values[k]!;
  });
}
