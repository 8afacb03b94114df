/**
 * Server configuration: raw input (flags, environment) is parsed once into a
 * validated ServerConfig. Defaults live in DEFAULTS; components receive only
 * the slice they need.
 *
 * The default host is 127.0.0.1: a fresh `npm start` is reachable from this
 * machine only. A public deployment passes `--host 0.0.0.0` (or a specific
 * address) on purpose, usually behind a TLS-ending reverse proxy.
 *
 * Safe by default: open sign-up is off (accounts come from the admin's
 * invite or `users create`), the public URL's host may not be a service
 * origin, and only configured Host names get the gateway (./http/hosts.ts).
 */
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { PeerwayError, SIZE_UNITS_HELP, isValidServiceName, parseSize } from '@peerway/protocol';

export const DEFAULTS = {
  port: 8080,
  host: '127.0.0.1',
  dataDir: './.peerway-data',
  baseDomain: 'localhost',
  presenceTimeoutMs: 30_000,
  heartbeatIntervalMs: 10_000,
  /** A node offline this long is lost: its replicas are placed on other nodes. */
  rescheduleAfterMs: 10_000,
  turnCredentialTtlS: 600,
  openSignup: false,
  /** A job's lease lapses this long after its worker's last heartbeat. */
  jobLeaseMs: 30_000,
  /** What one job's files may take on disk together. */
  jobFilesMaxBytes: 256 * 1024 ** 2,
  /** Ended jobs (and their files) are removed this long after they ended (0: kept). */
  jobRetentionMs: 7 * 24 * 3600 * 1000,
} as const;

/** pino levels, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** What flags and environment variables may say, before validation. */
export interface RawServerConfig {
  port?: string | number;
  host?: string;
  dataDir?: string;
  publicUrl?: string;
  baseDomain?: string;
  redisUrl?: string;
  turnSecret?: string;
  turnUrls?: string[] | string;
  stunUrls?: string[] | string;
  authJwksUrl?: string;
  authIssuer?: string;
  authAudience?: string;
  presenceTimeoutMs?: string | number;
  heartbeatIntervalMs?: string | number;
  /** `--reschedule-after`: a duration such as 30s, 500ms or 2m; a plain number is seconds. */
  rescheduleAfter?: string | number;
  turnCredentialTtlS?: string | number;
  openSignup?: boolean | string;
  /** When set, GET /metrics needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** More Host names the gateway answers on (besides the public URL's host and loopback). */
  allowedHosts?: string[] | string;
  logLevel?: string;
  /** `--job-retention`: 7d, 12h, 30m; a plain number is days; 0 keeps ended jobs. */
  jobRetention?: string | number;
  /** `--job-lease`: a duration such as 30s; a plain number is seconds. */
  jobLease?: string | number;
  /** `--job-files-dir`: where jobs' files are kept (default `<data dir>/job-files`). */
  jobFilesDir?: string;
  /** `--job-files-max`: a size such as 256MiB, per job. */
  jobFilesMax?: string | number;
}

const list = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((v) =>
    v === undefined
      ? []
      : (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean),
  );

/** Shortest and longest `--reschedule-after`. */
const MIN_RESCHEDULE_AFTER_MS = 100;
const MAX_RESCHEDULE_AFTER_MS = 24 * 3600 * 1000;
const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration (`30s`, `500ms`, `2m`, `1h`; a plain number is seconds) in milliseconds. */
const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(v));
  const ms = m ? Math.round(Number(m[1]) * DURATION_UNITS_MS[m[2] ?? 's']!) : NaN;
  if (!Number.isFinite(ms) || ms < MIN_RESCHEDULE_AFTER_MS || ms > MAX_RESCHEDULE_AFTER_MS) {
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: `${JSON.stringify(v)} is not a duration from 100ms to 24h: say e.g. 30s, 500ms or 2m`,
    });
    return z.NEVER;
  }
  return ms;
});

/** `--job-retention`: 0 (keep), or a duration from 1m to 3650d such as 7d or 12h. */
const retention = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$/.exec(String(v));
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m?.[2] ?? 'd']!;
  const ms = m ? Math.round(Number(m[1]) * unit) : NaN;
  if (ms === 0) return 0;
  if (!Number.isFinite(ms) || ms < 60_000 || ms > 3650 * 86_400_000) {
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: `${JSON.stringify(v)} is not a retention: say e.g. 7d, 12h or 30m (at least 1m), or 0 to keep ended jobs`,
    });
    return z.NEVER;
  }
  return ms;
});

const Schema = z
  .object({
    port: z.coerce.number().int().min(0).max(65535).default(DEFAULTS.port),
    host: z.string().default(DEFAULTS.host),
    dataDir: z.string().default(DEFAULTS.dataDir),
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    baseDomain: z
      .string()
      .regex(/^[a-z0-9.-]+$/i)
      .default(DEFAULTS.baseDomain),
    redisUrl: z.string().optional(),
    turnSecret: z.string().min(8, 'the TURN secret must be at least 8 characters').optional(),
    turnUrls: list.pipe(
      z.array(z.string().regex(/^turns?:/, 'TURN URLs start with turn: or turns:')),
    ),
    stunUrls: list.pipe(z.array(z.string().regex(/^stun:/, 'STUN URLs start with stun:'))),
    authJwksUrl: z.url().optional(),
    authIssuer: z.string().optional(),
    authAudience: z.string().optional(),
    presenceTimeoutMs: z.coerce.number().int().min(100).default(DEFAULTS.presenceTimeoutMs),
    heartbeatIntervalMs: z.coerce.number().int().min(50).default(DEFAULTS.heartbeatIntervalMs),
    rescheduleAfter: duration.optional(),
    turnCredentialTtlS: z.coerce
      .number()
      .int()
      .min(60)
      .max(86_400)
      .default(DEFAULTS.turnCredentialTtlS),
    openSignup: z
      .union([
        z.boolean(),
        z
          .enum(['true', 'false', '1', '0', 'yes', 'no'], 'say true or false')
          .transform((s) => s === 'true' || s === '1' || s === 'yes'),
      ])
      .default(DEFAULTS.openSignup),
    metricsToken: z.string().min(16, 'the metrics token must be at least 16 characters').optional(),
    allowedHosts: list.pipe(
      z.array(
        z
          .string()
          .regex(
            /^(?:[a-z0-9.-]+|\[?[0-9a-f:.]+\]?)$/i,
            'a host name or IP address, without scheme or port',
          )
          .transform((h) => h.toLowerCase().replace(/^\[|\]$/g, '')),
      ),
    ),
    jobLease: duration.optional(),
    jobRetention: retention.optional(),
    jobFilesDir: z.string().optional(),
    jobFilesMax: z
      .union([z.number(), z.string()])
      .transform((v, ctx) => {
        const r = parseSize(v);
        if (!r.ok || r.value < 1) {
          ctx.issues.push({
            code: 'custom',
            input: v,
            message: `${JSON.stringify(v)} is not a size: say e.g. 256MiB (${SIZE_UNITS_HELP})`,
          });
          return z.NEVER;
        }
        return r.value;
      })
      .optional(),
    /** Unset: keep the logger's own default (PEERWAY_LOG_LEVEL, else info; silent under vitest). */
    logLevel: z.enum(LOG_LEVELS).optional(),
  })
  .refine((c) => c.turnUrls.length === 0 || c.turnSecret, {
    message: '--turn-url needs --turn-secret',
    path: ['turnSecret'],
  })
  .refine((c) => !c.authJwksUrl || (c.authIssuer && c.authAudience), {
    message: '--auth-jwks-url needs --auth-issuer and --auth-audience',
    path: ['authJwksUrl'],
  })
  .refine((c) => c.heartbeatIntervalMs < c.presenceTimeoutMs, {
    message: 'the heartbeat interval must be shorter than the presence timeout',
    path: ['heartbeatIntervalMs'],
  });

export type ServerConfig = Omit<
  z.output<typeof Schema>,
  'publicUrl' | 'rescheduleAfter' | 'jobLease' | 'jobRetention' | 'jobFilesDir' | 'jobFilesMax'
> & {
  /** Ended jobs and their files are removed this long after they ended; 0 keeps them (`--job-retention`). */
  jobRetentionMs: number;
  /** A node offline this long is lost and its replicas go elsewhere (`--reschedule-after`). */
  rescheduleAfterMs: number;
  /** A job's lease lapses this long after its worker's last heartbeat (`--job-lease`). */
  jobLeaseMs: number;
  /** Where jobs' files are kept (`--job-files-dir`). */
  jobFilesDir: string;
  /** What one job's files may take together, in bytes (`--job-files-max`). */
  jobFilesMaxBytes: number;
  /** Where browsers and agents reach this server; without a trailing slash. */
  publicUrl: string;
  /** True when publicUrl was derived from the port (it follows the actual port after listen). */
  publicUrlDerived: boolean;
};

/** Validates raw configuration; throws PeerwayError('bad_request') naming the bad option. */
export function parseConfig(raw: RawServerConfig): ServerConfig {
  const cleaned = Object.fromEntries(
    Object.entries(raw).filter(([, v]) => v !== undefined && v !== ''),
  );
  const r = Schema.safeParse(cleaned);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PeerwayError(
      'bad_request',
      `invalid server option ${i.path.join('.') || ''}: ${i.message}`,
    );
  }
  const c = r.data;
  const gatewayHost = c.publicUrl ? new URL(c.publicUrl).hostname.toLowerCase() : 'localhost';
  const service = serviceLabelOf(gatewayHost, c.baseDomain);
  if (service !== null)
    throw new PeerwayError(
      'bad_request',
      `invalid server option publicUrl: its host ${gatewayHost} is itself a service origin under the base domain ${c.baseDomain} (a service named "${service}" would be served where the gateway is): give the gateway a host outside *.${c.baseDomain} (e.g. ${c.baseDomain} itself), or another --base-domain`,
    );
  const { rescheduleAfter, jobLease, jobRetention, jobFilesDir, jobFilesMax, ...rest } = c;
  return {
    ...rest,
    rescheduleAfterMs: rescheduleAfter ?? DEFAULTS.rescheduleAfterMs,
    jobLeaseMs: jobLease ?? DEFAULTS.jobLeaseMs,
    jobRetentionMs: jobRetention ?? DEFAULTS.jobRetentionMs,
    jobFilesDir: resolve(jobFilesDir ?? join(c.dataDir, 'job-files')),
    jobFilesMaxBytes: jobFilesMax ?? DEFAULTS.jobFilesMaxBytes,
    dataDir: resolve(c.dataDir),
    publicUrl: (c.publicUrl ?? `http://localhost:${c.port}`).replace(/\/+$/, ''),
    publicUrlDerived: c.publicUrl === undefined,
  };
}

/** The service name `host` would be under `baseDomain` (as the service router reads it), or null. */
function serviceLabelOf(host: string, baseDomain: string): string | null {
  const suffix = `.${baseDomain.toLowerCase()}`;
  if (!host.endsWith(suffix)) return null;
  const label = host.slice(0, -suffix.length);
  return isValidServiceName(label) ? label : null;
}

/** Reads the documented environment variables. */
export function configFromEnv(env: NodeJS.ProcessEnv): RawServerConfig {
  return {
    port: env.PORT,
    host: env.PEERWAY_HOST,
    dataDir: env.PEERWAY_DATA_DIR,
    publicUrl: env.PEERWAY_PUBLIC_URL,
    baseDomain: env.PEERWAY_BASE_DOMAIN,
    redisUrl: env.PEERWAY_REDIS_URL,
    turnSecret: env.PEERWAY_TURN_SECRET,
    turnUrls: env.PEERWAY_TURN_URLS,
    stunUrls: env.PEERWAY_STUN_URLS,
    authJwksUrl: env.PEERWAY_AUTH_JWKS_URL,
    authIssuer: env.PEERWAY_AUTH_ISSUER,
    authAudience: env.PEERWAY_AUTH_AUDIENCE,
    presenceTimeoutMs: env.PEERWAY_PRESENCE_TIMEOUT_MS,
    heartbeatIntervalMs: env.PEERWAY_HEARTBEAT_INTERVAL_MS,
    turnCredentialTtlS: env.PEERWAY_TURN_CREDENTIAL_TTL_S,
    openSignup: env.PEERWAY_OPEN_SIGNUP,
    metricsToken: env.PEERWAY_METRICS_TOKEN,
    allowedHosts: env.PEERWAY_ALLOWED_HOSTS,
    logLevel: env.PEERWAY_LOG_LEVEL,
    jobLease: env.PEERWAY_JOB_LEASE,
    jobRetention: env.PEERWAY_JOB_RETENTION,
    jobFilesDir: env.PEERWAY_JOB_FILES_DIR,
    jobFilesMax: env.PEERWAY_JOB_FILES_MAX,
  };
}
