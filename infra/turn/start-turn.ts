/**
 * `npx tsx infra/turn/start-turn.ts` — renders the config from the
 * environment and runs coturn in the foreground.
 *
 *   PEERWAY_TURN_SECRET   shared secret(s), comma-separated, newest first (required)
 *   TURN_LISTEN_IPS       default 0.0.0.0          TURN_RELAY_IPS  default: the listen IPs
 *   TURN_EXTERNAL_IP      public[/private] behind 1:1 NAT
 *   TURN_PORT             default 3478             TURN_MIN_PORT / TURN_MAX_PORT  relay range
 *   TURN_REALM            default peerway          TURN_TLS_PORT + TURN_CERT + TURN_PKEY  for TLS (443)
 *   PEERWAY_REDIS_URL     redis://host:port/db     status events via redis-statsdb
 */
import { startTurn } from './turn-process';
import { TURN_DEFAULTS } from './config';

const env = process.env;
const secrets = (env.PEERWAY_TURN_SECRET ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
if (secrets.length === 0) {
  console.error(
    'start-turn: set PEERWAY_TURN_SECRET (the same secret the Peerway server gets with --turn-secret)',
  );
  process.exit(1);
}
const listen = (env.TURN_LISTEN_IPS ?? '0.0.0.0').split(',');
const redis = env.PEERWAY_REDIS_URL ? new URL(env.PEERWAY_REDIS_URL) : null;
const turn = await startTurn({
  secrets,
  listeningIps: listen,
  relayIps: (env.TURN_RELAY_IPS ?? listen.join(',')).split(','),
  ...(env.TURN_EXTERNAL_IP ? { externalIp: env.TURN_EXTERNAL_IP } : {}),
  port: Number(env.TURN_PORT ?? TURN_DEFAULTS.port),
  minPort: Number(env.TURN_MIN_PORT ?? TURN_DEFAULTS.minPort),
  maxPort: Number(env.TURN_MAX_PORT ?? TURN_DEFAULTS.maxPort),
  realm: env.TURN_REALM ?? TURN_DEFAULTS.realm,
  ...(env.TURN_TLS_PORT && env.TURN_CERT && env.TURN_PKEY
    ? { tls: { port: Number(env.TURN_TLS_PORT), cert: env.TURN_CERT, pkey: env.TURN_PKEY } }
    : {}),
  ...(redis
    ? {
        redisStatsDb: {
          host: redis.hostname,
          port: Number(redis.port || 6379),
          db: Number(redis.pathname.slice(1) || 0),
          ...(redis.password ? { password: redis.password } : {}),
        },
      }
    : {}),
});
console.log(`coturn running (pid ${turn.proc.pid}), config ${turn.configPath}`);
turn.proc.stdout?.pipe(process.stdout);
const stop = () => void turn.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
