/**
 * The agent's home directory ($PEERWAY_HOME, default ~/.peerway): its identity
 * (agent.json, mode 0600) and its config (config.json), validated on load
 * with errors that say which file and field is wrong and what to do.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  PeerwayError,
  RESERVED_SERVICE_NAMES,
  SERVICE_NAME_RE,
  parseServerUrl,
} from '@peerway/protocol';
import {
  generateIdentity,
  loadIdentity,
  storeIdentity,
  type NodeIdentity,
} from '@peerway/protocol/node';
import { DeployConfigShape } from './deploy/settings';
import { JobsConfigSchema } from './jobs/settings';

export function homeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.PEERWAY_HOME ?? join(homedir(), '.peerway');
}

/** Normalises a target: "3000", "localhost:3000" or a URL → an http(s) origin URL. */
export function normaliseTarget(raw: string): string {
  let s = raw.trim();
  if (/^\d+$/.test(s)) s = `http://127.0.0.1:${s}`;
  else if (!/^[a-z]+:\/\//i.test(s)) s = `http://${s}`;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new PeerwayError(
      'bad_request',
      `"${raw}" is not a target: use a port (3000), host:port, or http://host:port`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new PeerwayError('bad_request', `target "${raw}" must be http or https`);
  }
  if (u.username || u.password)
    throw new PeerwayError('bad_request', 'put no credentials in a target URL');
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * A service's public URL: `<name>.<host of the server URL>`. The server's
 * base domain can differ from its own host (--base-domain); the welcome does
 * not say, so this is the common case, not a certainty.
 */
export function serviceUrl(server: string, name: string): string {
  const u = new URL(server);
  return `${u.protocol}//${name}.${u.hostname}${u.port ? `:${u.port}` : ''}/`;
}

export const ServiceConfigSchema = z.object({
  name: z.string().regex(SERVICE_NAME_RE, 'a service name is a DNS label: a-z, 0-9 and "-"'),
  target: z.string().transform((t, ctx) => {
    try {
      return normaliseTarget(t);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  }),
  public: z.boolean().default(false),
  description: z.string().max(200).optional(),
  /** How long the upstream may take to start answering before the browser gets a 504. */
  timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
});
export type ServiceConfig = z.output<typeof ServiceConfigSchema>;

/** What a valid service name is, in words, with a corrected name to try when there is one. */
export function serviceNameProblem(name: string): string | null {
  if (SERVICE_NAME_RE.test(name)) {
    return RESERVED_SERVICE_NAMES.has(name)
      ? `"${name}" is kept for the Peerway gateway itself: choose another service name`
      : null;
  }
  const fixed = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  const hint = fixed && fixed !== name && SERVICE_NAME_RE.test(fixed) ? ` (try "${fixed}")` : '';
  return (
    `"${name}" is not a valid service name: a service name is a DNS label: lower-case ` +
    `letters a-z, digits 0-9 and "-", 1 to 63 characters, starting and ending with a ` +
    `letter or digit${hint}`
  );
}

/** Validates one service; `label` says where it came from, for the error (a flag, a command). */
function serviceFrom(raw: Record<string, unknown>, label: string): ServiceConfig {
  const r = ServiceConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const what =
      i.path[0] === 'name' && typeof raw.name === 'string'
        ? serviceNameProblem(raw.name)
        : `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`;
    throw new PeerwayError('bad_request', `${label}: ${what}`);
  }
  return r.data;
}

/** Parses `NAME=TARGET[,public][,timeoutMs=N]`. */
export function parseServiceFlag(v: string): ServiceConfig {
  const eq = v.indexOf('=');
  if (eq < 1)
    throw new PeerwayError(
      'bad_request',
      `--service "${v}": use NAME=TARGET[,public][,timeoutMs=N]`,
    );
  const [target, ...flags] = v.slice(eq + 1).split(',');
  const raw: Record<string, unknown> = { name: v.slice(0, eq), target };
  for (const f of flags) {
    if (f === 'public') raw.public = true;
    else if (/^timeoutMs=\d+$/.test(f)) raw.timeoutMs = Number(f.slice('timeoutMs='.length));
    else
      throw new PeerwayError(
        'bad_request',
        `--service "${v}": unknown option "${f}" (known: public, timeoutMs=N)`,
      );
  }
  return serviceFrom(raw, `--service "${v}"`);
}

/**
 * The service `peerway-agent expose NAME TARGET [--public]` declares; its
 * errors speak of that command (NAME, TARGET), not of a flag.
 */
export function parseExpose(name: string, target: string, isPublic: boolean): ServiceConfig {
  const usage = `expose ${name} ${target}`;
  const reserved = SERVICE_NAME_RE.test(name) ? serviceNameProblem(name) : null;
  if (reserved) throw new PeerwayError('bad_request', `${usage}: ${reserved}`);
  try {
    return serviceFrom({ name, target, public: isPublic }, usage);
  } catch (err) {
    throw new PeerwayError(
      'bad_request',
      `${(err as Error).message}\n  usage: peerway-agent expose NAME TARGET [--public]: NAME becomes ` +
        `NAME.<base-domain>; TARGET is a port (3000), host:port or http://host:port on this machine`,
    );
  }
}

/** Checks a server URL as a user typed it (the protocol's rule, which `peerway` uses too). */
export { parseServerUrl } from '@peerway/protocol';

export const AgentConfigSchema = z.object({
  server: z
    .string()
    .transform((s, ctx) => {
      try {
        return parseServerUrl(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  name: z
    .string()
    .min(1)
    .max(64)
    .default(hostname().slice(0, 64) || 'node'),
  token: z.string().max(4096).optional(),
  services: z.array(ServiceConfigSchema).max(64).default([]),
  /** Deployments: on/off, the offer's caps, labels, allowed registries (./deploy/settings). */
  ...DeployConfigShape,
  /** Jobs: on/off, concurrency, the connectors and their settings (./jobs/settings). */
  jobs: JobsConfigSchema,
});
export type AgentConfig = z.output<typeof AgentConfigSchema>;
export type RawAgentConfig = z.input<typeof AgentConfigSchema>;

/** Said after every problem with config.json: how to get a working one back. */
const REWRITE_HINT =
  'fix it in that file, or run `peerway-agent init --server URL` to rewrite it (it keeps what is valid)';

function readJson(path: string, hint = 'fix or delete it'): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new PeerwayError(
      'bad_request',
      `${path} is not valid JSON (${(cause as Error).message}); ${hint}`,
      { cause },
    );
  }
}

const configPath = (dir: string) => join(dir, 'config.json');

/** The first problem of a parsed config.json, in words, or the valid config. */
function checkConfig(
  raw: unknown,
): { ok: true; config: AgentConfig } | { ok: false; problem: string } {
  const r = AgentConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    return { ok: false, problem: `${i.path.join('.') || '(top level)'}: ${i.message}` };
  }
  const names = new Set<string>();
  for (const s of r.data.services) {
    if (names.has(s.name)) return { ok: false, problem: `service "${s.name}" is declared twice` };
    names.add(s.name);
  }
  return { ok: true, config: r.data };
}

/** Loads config.json (an empty config if there is none). */
export function loadConfig(dir = homeDir()): AgentConfig {
  const path = configPath(dir);
  const raw = existsSync(path) ? readJson(path, REWRITE_HINT) : {};
  const r = checkConfig(raw);
  if (!r.ok) throw new PeerwayError('bad_request', `${path}: ${r.problem}; ${REWRITE_HINT}`);
  return r.config;
}

/**
 * What `init` starts from: config.json as it is, or, when it is broken, every
 * field of it that is still valid. A broken file is copied to
 * config.json.broken first, so rewriting it loses nothing.
 */
export function salvageConfig(dir = homeDir()): {
  config: RawAgentConfig;
  /** What was left out, in words (empty for a valid file). */
  dropped: string[];
  /** Where the broken file was copied, if it was broken. */
  backup: string | null;
} {
  const path = configPath(dir);
  if (!existsSync(path)) return { config: {}, dropped: [], backup: null };
  let raw: unknown;
  const dropped: string[] = [];
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    dropped.push(`everything: it is not valid JSON (${(err as Error).message})`);
    raw = {};
  }
  const whole = checkConfig(raw);
  if (whole.ok && dropped.length === 0) return { config: whole.config, dropped, backup: null };
  const backup = `${path}.broken`;
  copyFileSync(path, backup);
  chmodSync(backup, 0o600);
  const obj: Record<string, unknown> =
    raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  if (obj !== raw) dropped.push('everything: it is not a JSON object');
  const config: Record<string, unknown> = {};
  const shape = AgentConfigSchema.shape;
  for (const key of Object.keys(obj)) {
    if (!(key in shape)) {
      dropped.push(`${key}: not a setting`);
      continue;
    }
    if (key === 'services' && Array.isArray(obj.services)) {
      const kept: ServiceConfig[] = [];
      obj.services.forEach((s: unknown, i) => {
        const r = ServiceConfigSchema.safeParse(s);
        if (!r.success) dropped.push(`services.${i}: ${r.error.issues[0]!.message}`);
        else if (kept.some((k) => k.name === r.data.name))
          dropped.push(`services.${i}: service "${r.data.name}" is declared twice`);
        else kept.push(r.data);
      });
      config.services = kept;
      continue;
    }
    const r = shape[key as keyof typeof shape].safeParse(obj[key]);
    if (r.success) config[key] = r.data;
    else dropped.push(`${key}: ${r.error.issues[0]!.message}`);
  }
  return { config: config as RawAgentConfig, dropped, backup };
}

/** Writes config.json atomically. */
export function saveConfig(cfg: RawAgentConfig, dir = homeDir()): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = configPath(dir);
  writeFileSync(`${path}.tmp`, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/** Loads the node identity, making one on first run (agent.json, mode 0600). */
export function loadOrCreateIdentity(dir = homeDir()): NodeIdentity {
  const path = join(dir, 'agent.json');
  if (existsSync(path)) {
    const raw = readJson(path) as { privateKey?: unknown; nodeId?: unknown };
    if (typeof raw.privateKey !== 'string' || typeof raw.nodeId !== 'string') {
      throw new PeerwayError(
        'bad_request',
        `${path} has no privateKey/nodeId; move it away to make a new identity`,
      );
    }
    try {
      return loadIdentity({ privateKey: raw.privateKey, nodeId: raw.nodeId });
    } catch (cause) {
      throw new PeerwayError('bad_request', `${path}: ${(cause as Error).message}`, { cause });
    }
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = generateIdentity();
  writeFileSync(path, JSON.stringify(storeIdentity(id), null, 2) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
  return id;
}
