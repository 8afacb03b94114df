/**
 * The owner's job settings: whether this node is a worker (`--jobs`), how
 * many jobs it runs at once (`--job-concurrency N`), and which connectors
 * it runs them with, each with its settings. In config.json:
 *
 * ```json
 * "jobs": {
 *   "enabled": true,
 *   "concurrency": 2,
 *   "connectors": {
 *     "simulation": {},
 *     "http": { "services": ["api"] },
 *     "comfyui": { "url": "http://127.0.0.1:8188" },
 *     "container": { "images": ["127.0.0.1:5000/batch:*"], "cpu": 1, "memory": "512MiB" }
 *   }
 * }
 * ```
 *
 * `--connector NAME[=VALUE]` (repeatable) picks the connectors of this run
 * (all configured ones without it); its value sets the one setting each
 * needs: `http=SERVICE[,SERVICE]`, `comfyui=URL`, `container=IMAGE[,IMAGE]`.
 * Light on purpose: every command loads it with config.json.
 */
import { z } from 'zod';
import {
  JOB_TYPES,
  MAX_WORKER_CONCURRENCY,
  PeerwayError,
  SERVICE_NAME_RE,
  parseImageReference,
  type JobType,
} from '@peerway/protocol';
import { normaliseRegistryHost } from '../runtime/image-ref';
import { checked, parseDeployCpu, parseDeployMemory } from '../deploy/settings';

/** Largest stdout/stderr kept of a container job, per stream, in bytes. */
export const DEFAULT_CONTAINER_LOG_BYTES = 64 * 1024;
/** Largest total of a container job's /out files, in bytes. */
export const DEFAULT_CONTAINER_OUT_BYTES = 64 * 1024 * 1024;
/** Largest body an http job's answer may have, in bytes. */
export const DEFAULT_HTTP_MAX_BODY_BYTES = 1024 * 1024;

export interface HttpConnectorSettings {
  /** The declared services it may call (names). */
  services: string[];
  maxBodyBytes: number;
}

export interface ComfyUiConnectorSettings {
  /** ComfyUI's origin, e.g. http://127.0.0.1:8188. */
  url: string;
}

export interface ContainerConnectorSettings {
  /** Image patterns it may run: exact references, or `registry/name:*` for any tag. */
  images: string[];
  /** Registries it pulls from: those of `images` unless given. */
  registries: string[];
  /** Per job; null: no limit beyond the machine. */
  cpuCores: number | null;
  memoryBytes: number | null;
  /** Jobs' containers get the engine's bridge network; off (the default): none at all. */
  network: boolean;
  maxLogBytes: number;
  maxOutBytes: number;
}

export interface JobSettings {
  enabled: boolean;
  concurrency: number;
  connectors: {
    simulation?: Record<string, never>;
    http?: HttpConnectorSettings;
    comfyui?: ComfyUiConnectorSettings;
    container?: ContainerConnectorSettings;
  };
}

export const NO_JOBS: JobSettings = { enabled: false, concurrency: 1, connectors: {} };

const concurrency = z.number().int().min(1).max(MAX_WORKER_CONCURRENCY);

/** A ComfyUI URL: http(s), no credentials, no path; its origin. */
export function parseComfyUrl(v: unknown, where: string | null): string {
  const at = where ? `${where}: ` : '';
  let u: URL;
  try {
    u = new URL(String(v));
  } catch {
    throw new PeerwayError(
      'bad_request',
      `${at}"${String(v)}" is not a URL (e.g. http://127.0.0.1:8188)`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new PeerwayError('bad_request', `${at}ComfyUI's URL must be http or https`);
  if (u.username || u.password)
    throw new PeerwayError('bad_request', `${at}put no credentials in ComfyUI's URL`);
  return u.origin;
}

/** An image pattern: an image reference, or one ending in `:*` for any tag. */
export function parseImagePattern(v: string, where: string | null): string {
  const at = where ? `${where}: ` : '';
  const ref = v.endsWith(':*') ? `${v.slice(0, -2)}:x` : v;
  const r = parseImageReference(ref);
  if (!r.ok)
    throw new PeerwayError(
      'bad_request',
      `${at}"${v}" is not an image or image pattern (registry/name:tag, or registry/name:* for any tag): ${r.message}`,
    );
  if (!r.value.registry)
    throw new PeerwayError(
      'bad_request',
      `${at}"${v}" names no registry: write it in full (docker.io/library/busybox:*, 127.0.0.1:5000/batch:*)`,
    );
  return v;
}

/** The registry host of an image pattern. */
export function patternRegistry(pattern: string): string {
  const ref = pattern.endsWith(':*') ? `${pattern.slice(0, -2)}:x` : pattern;
  const r = parseImageReference(ref);
  if (!r.ok || !r.value.registry)
    throw new PeerwayError('bad_request', `bad image pattern ${pattern}`);
  return normaliseRegistryHost(r.value.registry);
}

const HttpConfig = z.strictObject({
  services: z
    .array(z.string().regex(SERVICE_NAME_RE, 'a service name: a-z, 0-9 and "-"'))
    .min(1, 'name at least one declared service it may call')
    .max(64),
  maxBodyBytes: checked((v) => parseDeployMemory(v, null)).optional(),
});
const ComfyConfig = z.strictObject({ url: checked((v) => parseComfyUrl(v, null)) });
const ContainerConfig = z.strictObject({
  images: z
    .array(checked((v) => parseImagePattern(String(v), null)))
    .min(1, 'name at least one image or pattern it may run')
    .max(64),
  registries: z
    .array(checked((v) => normaliseRegistryHost(String(v))))
    .max(64)
    .optional(),
  cpu: checked((v) => parseDeployCpu(v, null)).optional(),
  memory: checked((v) => parseDeployMemory(v, null)).optional(),
  network: z.boolean().default(false),
  maxLogBytes: checked((v) => parseDeployMemory(v, null)).optional(),
  maxOutBytes: checked((v) => parseDeployMemory(v, null)).optional(),
});

/** The `jobs` key of config.json. */
export const JobsConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    concurrency: concurrency.default(1),
    connectors: z
      .strictObject({
        simulation: z.strictObject({}).optional(),
        http: HttpConfig.optional(),
        comfyui: ComfyConfig.optional(),
        container: ContainerConfig.optional(),
      })
      .default({}),
  })
  .optional();
export type JobsConfig = z.output<typeof JobsConfigSchema>;

/** The job flags of `peerway-agent run`, as commander gives them. */
export interface JobFlags {
  jobs?: boolean;
  jobConcurrency?: string;
  connector?: string[];
}

type ConnectorConfigs = NonNullable<JobsConfig>['connectors'];

function httpSettings(c: NonNullable<ConnectorConfigs['http']>): HttpConnectorSettings {
  return {
    services: [...new Set(c.services)],
    maxBodyBytes: c.maxBodyBytes ?? DEFAULT_HTTP_MAX_BODY_BYTES,
  };
}

function containerSettings(
  c: NonNullable<ConnectorConfigs['container']>,
): ContainerConnectorSettings {
  return {
    images: [...new Set(c.images)],
    registries: [...new Set(c.registries ?? c.images.map(patternRegistry))],
    cpuCores: c.cpu ?? null,
    memoryBytes: c.memory ?? null,
    network: c.network,
    maxLogBytes: c.maxLogBytes ?? DEFAULT_CONTAINER_LOG_BYTES,
    maxOutBytes: c.maxOutBytes ?? DEFAULT_CONTAINER_OUT_BYTES,
  };
}

/** Every configured connector's settings. */
function fromConfig(c: ConnectorConfigs): JobSettings['connectors'] {
  return {
    ...(c.simulation ? { simulation: {} } : {}),
    ...(c.http ? { http: httpSettings(c.http) } : {}),
    ...(c.comfyui ? { comfyui: { url: c.comfyui.url } } : {}),
    ...(c.container ? { container: containerSettings(c.container) } : {}),
  };
}

const CONNECTOR_USAGE =
  '--connector simulation | http=SERVICE[,SERVICE] | comfyui=URL | container=IMAGE[,IMAGE] (or its settings under jobs.connectors in config.json)';

/** The settings a run uses: the flags over config.json's `jobs` key. */
export function jobSettings(cfg: { jobs?: JobsConfig }, flags: JobFlags = {}): JobSettings {
  const file = cfg.jobs;
  const configured = fromConfig(file?.connectors ?? {});
  let connectors: JobSettings['connectors'] = configured;
  if (flags.connector !== undefined && flags.connector.length > 0) {
    connectors = {};
    for (const arg of flags.connector) {
      const eq = arg.indexOf('=');
      const name = (eq < 0 ? arg : arg.slice(0, eq)).trim();
      const value = eq < 0 ? undefined : arg.slice(eq + 1);
      if (!(JOB_TYPES as readonly string[]).includes(name))
        throw new PeerwayError(
          'bad_request',
          `--connector ${arg}: "${name}" is not a connector (known: ${JOB_TYPES.join(', ')})`,
        );
      const type = name as JobType;
      if (type in connectors)
        throw new PeerwayError('bad_request', `--connector ${name} is given twice: give it once`);
      const list = (v: string) =>
        v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
      const where = `--connector ${arg}`;
      switch (type) {
        case 'simulation':
          if (value !== undefined)
            throw new PeerwayError(
              'bad_request',
              `${where}: the simulation connector takes no setting`,
            );
          connectors.simulation = {};
          break;
        case 'http': {
          if (value === undefined) {
            if (!configured.http)
              throw new PeerwayError(
                'bad_request',
                `${where}: name the declared services it may call (--connector http=api) or set jobs.connectors.http.services in config.json`,
              );
            connectors.http = configured.http;
            break;
          }
          const services = list(value);
          const bad = services.find((s) => !SERVICE_NAME_RE.test(s));
          if (bad !== undefined || services.length === 0)
            throw new PeerwayError(
              'bad_request',
              `${where}: ${bad === undefined ? 'no service named' : `"${bad}" is not a service name`} (use http=SERVICE[,SERVICE])`,
            );
          connectors.http = httpSettings({ services, maxBodyBytes: configured.http?.maxBodyBytes });
          break;
        }
        case 'comfyui':
          if (value === undefined) {
            if (!configured.comfyui)
              throw new PeerwayError(
                'bad_request',
                `${where}: give ComfyUI's URL (--connector comfyui=http://127.0.0.1:8188) or set jobs.connectors.comfyui.url in config.json`,
              );
            connectors.comfyui = configured.comfyui;
          } else connectors.comfyui = { url: parseComfyUrl(value, where) };
          break;
        case 'container': {
          if (value === undefined) {
            if (!configured.container)
              throw new PeerwayError(
                'bad_request',
                `${where}: name the images it may run (--connector container=127.0.0.1:5000/batch:*) or set jobs.connectors.container.images in config.json`,
              );
            connectors.container = configured.container;
            break;
          }
          const images = list(value).map((i) => parseImagePattern(i, where));
          if (images.length === 0)
            throw new PeerwayError(
              'bad_request',
              `${where}: name at least one image (container=IMAGE[,IMAGE])`,
            );
          const base = configured.container;
          connectors.container = {
            ...(base ?? containerSettings({ images, network: false })),
            images,
            registries: [...new Set(images.map(patternRegistry))],
          };
          break;
        }
        default: {
          const never: never = type;
          throw new Error(`unhandled connector ${String(never)}`);
        }
      }
    }
  }
  let n = file?.concurrency ?? 1;
  if (flags.jobConcurrency !== undefined) {
    const v = Number(flags.jobConcurrency);
    if (!/^\d+$/.test(flags.jobConcurrency.trim()) || !concurrency.safeParse(v).success)
      throw new PeerwayError(
        'bad_request',
        `--job-concurrency ${flags.jobConcurrency}: a whole number of jobs from 1 to ${MAX_WORKER_CONCURRENCY}`,
      );
    n = v;
  }
  const enabled = flags.jobs === true || (file?.enabled ?? false);
  if (enabled && Object.keys(connectors).length === 0)
    throw new PeerwayError(
      'bad_request',
      `--jobs: this node has no connector to run jobs with: add one, ${CONNECTOR_USAGE}`,
    );
  return { enabled, concurrency: n, connectors };
}

/** The settings in words (the start of `run`). */
export function describeJobSettings(s: JobSettings): string {
  if (!s.enabled) return 'off (peerway-agent run --jobs turns them on)';
  const parts: string[] = [];
  const c = s.connectors;
  if (c.simulation) parts.push('simulation');
  if (c.http) parts.push(`http (services ${c.http.services.join(', ')})`);
  if (c.comfyui) parts.push(`comfyui (${c.comfyui.url})`);
  if (c.container)
    parts.push(
      `container (images ${c.container.images.join(', ')}; ${c.container.network ? 'with' : 'no'} network)`,
    );
  return `on, ${s.concurrency} at once, connectors: ${parts.join('; ')}`;
}
