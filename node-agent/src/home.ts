/**
 * The agent's home directory ($PEERWAY_HOME, default ~/.peerway): its identity
 * (agent.json, mode 0600) and its config (config.json), validated on load
 * with errors that say which file and field is wrong and what to do.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { PeerwayError, SERVICE_NAME_RE } from '@peerway/protocol';
import {
  generateIdentity,
  loadIdentity,
  storeIdentity,
  type NodeIdentity,
} from '@peerway/protocol/node';

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
  const r = ServiceConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PeerwayError(
      'bad_request',
      `--service "${v}": ${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`,
    );
  }
  return r.data;
}

export const AgentConfigSchema = z.object({
  server: z.url({ protocol: /^https?$/ }).optional(),
  name: z
    .string()
    .min(1)
    .max(64)
    .default(hostname().slice(0, 64) || 'node'),
  token: z.string().max(4096).optional(),
  services: z.array(ServiceConfigSchema).max(64).default([]),
});
export type AgentConfig = z.output<typeof AgentConfigSchema>;
type RawAgentConfig = z.input<typeof AgentConfigSchema>;

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new PeerwayError(
      'bad_request',
      `${path} is not valid JSON (${(cause as Error).message}); fix or delete it`,
      { cause },
    );
  }
}

/** Loads config.json (an empty config if there is none). */
export function loadConfig(dir = homeDir()): AgentConfig {
  const path = join(dir, 'config.json');
  const raw = existsSync(path) ? readJson(path) : {};
  const r = AgentConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new PeerwayError(
      'bad_request',
      `${path}: ${i.path.join('.') || '(top level)'}: ${i.message}`,
    );
  }
  const names = new Set<string>();
  for (const s of r.data.services) {
    if (names.has(s.name))
      throw new PeerwayError('bad_request', `${path}: service "${s.name}" is declared twice`);
    names.add(s.name);
  }
  return r.data;
}

/** Writes config.json atomically. */
export function saveConfig(cfg: RawAgentConfig, dir = homeDir()): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'config.json');
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
