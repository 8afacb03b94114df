/**
 * The deployment spec: what to run, how many, with what, where. Written by
 * a person (YAML or JSON), parsed once at the edge into a `DeploymentSpec`
 * with every default filled in, sizes in bytes and CPU in millicores.
 * Parsing a parsed spec again gives the same spec, so the store can keep
 * the normalised form and check it on the way back in.
 */
import { z } from 'zod';
import { RESERVED_SERVICE_NAMES, SERVICE_NAME_RE } from '../names';
import { parseImageReference } from './image';
import {
  ENV_NAME_RE,
  MAX_LABELS,
  NODE_SHORT_ID_RE,
  labelKeyProblem,
  labelValueProblem,
} from './labels';
import { CPU_HELP, SIZE_UNITS_HELP, formatBytes, parseCpu, parseSize } from './units';

export const MAX_REPLICAS = 100;
export const MIN_CPU_MILLIS = 10;
export const MAX_CPU_MILLIS = 1024 * 1000;
export const MIN_MEMORY_BYTES = 6 * 1024 ** 2;
export const MAX_MEMORY_BYTES = 4 * 1024 ** 4;
export const MAX_GPUS = 16;
export const MAX_ENV_VARS = 256;
export const MAX_ENV_VALUE_CHARS = 32 * 1024;
export const MAX_ARGS = 256;
export const MAX_ARG_CHARS = 4096;
export const MAX_CONSTRAINT_NODES = 256;
export const MAX_HEALTH_PATH_CHARS = 1024;
export const MAX_HEALTH_INTERVAL_S = 3600;

export const PLACEMENTS = ['binpack', 'spread'] as const;
export const ACCESS_MODES = ['private', 'public', 'shared'] as const;
export const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;

/** A replica's states, as the agent reports them and the API shows them. */
export const REPLICA_STATES = [
  'pending',
  'pulling',
  'starting',
  'running',
  'unhealthy',
  'exited',
  'failed',
] as const;

export type ReplicaState = (typeof REPLICA_STATES)[number];
export type Placement = (typeof PLACEMENTS)[number];
export type AccessMode = (typeof ACCESS_MODES)[number];
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/** What one replica asks of its node. */
export interface ReplicaResources {
  cpuMillis: number;
  memoryBytes: number;
  gpu: number;
}

/** A validated deployment spec, every field present. */
export interface DeploymentSpec {
  /** The service name, and so its URL: `http://<name>.<base-domain>/`. */
  name: string;
  /** An image reference, as written (see `parseImageReference`). */
  image: string;
  /** The port the container listens on. */
  port: number;
  /** Replaces the image's entrypoint; null keeps it. */
  command: string[] | null;
  /** Replaces the image's default arguments (CMD); null keeps them. */
  args: string[] | null;
  env: Record<string, string>;
  replicas: number;
  /**
   * At most this many replicas on one node. 1 (the default) keeps replicas
   * on distinct nodes, so a node's death takes at most one; more allows
   * co-location where nodes are few, still preferring distinct nodes.
   */
  maxPerNode: number;
  resources: ReplicaResources;
  constraints: {
    /** Every one must be among the node's labels with this value. */
    labels: Record<string, string>;
    /** Short IDs; when not empty, only these nodes. */
    nodes: string[];
  };
  placement: Placement;
  health: {
    /** An HTTP GET of this path answered 200-399; null: the port accepts a TCP connection. */
    path: string | null;
    intervalS: number;
    timeoutS: number;
  };
  access: AccessMode;
  restart: RestartPolicy;
}

/** The defaults a spec gets for what it leaves out. */
export const DEPLOYMENT_DEFAULTS = {
  command: null,
  args: null,
  replicas: 1,
  maxPerNode: 1,
  resources: { cpuMillis: 250, memoryBytes: 256 * 1024 ** 2, gpu: 0 },
  placement: 'binpack',
  health: { path: null, intervalS: 5, timeoutS: 2 },
  access: 'private',
  restart: 'always',
} as const satisfies Partial<DeploymentSpec>;

/** One problem with a spec: where (`resources.memory`, `env.FOO`) and what, in words. */
export interface SpecError {
  path: string;
  message: string;
  /** 1-based, for specs read from YAML when the place is known. */
  line?: number;
  column?: number;
}

export type SpecResult = { ok: true; spec: DeploymentSpec } | { ok: false; errors: SpecError[] };

/** The fields each object of the spec takes, by path, for messages about unknown ones. */
const FIELDS: Readonly<Record<string, readonly string[]>> = {
  '': [
    'name',
    'image',
    'port',
    'command',
    'args',
    'env',
    'replicas',
    'maxPerNode',
    'resources',
    'constraints',
    'placement',
    'health',
    'access',
    'restart',
  ],
  resources: ['cpu', 'memory', 'gpu', 'cpuMillis', 'memoryBytes'],
  constraints: ['labels', 'nodes'],
  health: ['path', 'intervalS', 'timeoutS'],
};

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  return String(v);
}

/** A check's answer; `at` places a problem below the field (an entry of a list). */
type Answer<T> = { ok: true; value: T } | { ok: false; message: string; at?: number };

const ok = <T>(value: T): Answer<T> => ({ ok: true, value });
const no = (message: string, at?: number): Answer<never> =>
  at === undefined ? { ok: false, message } : { ok: false, message, at };

/** A field checked by a plain function; absent fields reach it as undefined. */
function field<T>(check: (v: unknown) => Answer<T>) {
  return z
    .unknown()
    .optional()
    .transform((v, ctx): T => {
      const r = check(v);
      if (r.ok) return r.value;
      const path = 'at' in r && r.at !== undefined ? [r.at] : [];
      ctx.issues.push({ code: 'custom', message: r.message, input: v, path });
      return z.NEVER;
    });
}

function integer(
  v: unknown,
  what: { min: number; max: number; fallback?: number; unit?: string },
): Answer<number> {
  if (v === undefined && what.fallback !== undefined) return ok(what.fallback);
  if (v === undefined) return no('is required');
  const range = `a whole number from ${what.min} to ${what.max}${what.unit ? ' ' + what.unit : ''}`;
  if (typeof v !== 'number' || !Number.isInteger(v))
    return no(`must be ${range}, not ${describe(v)}`);
  if (v < what.min || v > what.max) return no(`${v} is out of range: must be ${range}`);
  return ok(v);
}

function oneOf<T extends string>(values: readonly T[], fallback: T) {
  return (v: unknown): Answer<T> => {
    if (v === undefined) return ok(fallback);
    if (typeof v === 'string' && (values as readonly string[]).includes(v)) return ok(v as T);
    return no(`must be one of ${values.join(', ')}, not ${describe(v)}`);
  };
}

/** Strings, and scalars a person meant as strings (`PORT: 8080`, `DEBUG: true`). */
function text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') return String(v);
  return null;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const checkName = (v: unknown): Answer<string> => {
  if (v === undefined) return no('is required: the service name, which becomes its URL');
  if (typeof v !== 'string') return no(`must be a string, not ${describe(v)}`);
  if (RESERVED_SERVICE_NAMES.has(v)) return no(`"${v}" is kept for the gateway; choose another`);
  if (!SERVICE_NAME_RE.test(v)) {
    return no(
      `"${v}" is not a service name: lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit`,
    );
  }
  return ok(v);
};

const checkImage = (v: unknown): Answer<string> => {
  if (v === undefined)
    return no('is required: the container image to run, e.g. registry.example/blog:1.2');
  if (typeof v !== 'string') return no(`must be a string, not ${describe(v)}`);
  const r = parseImageReference(v);
  return r.ok ? ok(v.trim()) : r;
};

function checkArgv(label: string) {
  return (v: unknown): Answer<string[] | null> => {
    if (v === undefined || v === null) return ok(null);
    if (!Array.isArray(v)) {
      return no(`must be a list of strings, e.g. ["node", "server.js"], not ${describe(v)}`);
    }
    if (v.length === 0) return no(`must not be empty; leave ${label} out to keep the image's own`);
    if (v.length > MAX_ARGS) return no(`has ${v.length} entries; at most ${MAX_ARGS}`);
    const out: string[] = [];
    for (const [i, item] of v.entries()) {
      const s = text(item);
      if (s === null) return no(`must be a string, not ${describe(item)}`, i);
      if (s.length > MAX_ARG_CHARS) return no(`is longer than ${MAX_ARG_CHARS} characters`, i);
      if (s.includes('\0')) return no('contains a NUL character', i);
      out.push(s);
    }
    return ok(out);
  };
}

/** A mapping of strings whose keys are checked one by one, each error at its key. */
function stringMap(
  checkKey: (k: string) => string | null,
  checkValue: (k: string, v: string) => string | null,
  max: number,
  what: string,
) {
  return z
    .unknown()
    .optional()
    .transform((v, ctx): Record<string, string> => {
      if (v === undefined || v === null) return {};
      if (!isMapping(v)) {
        ctx.issues.push({
          code: 'custom',
          message: `must be a mapping of ${what}, e.g. { LOG_LEVEL: info }, not ${describe(v)}`,
          input: v,
        });
        return z.NEVER;
      }
      const entries = Object.entries(v);
      if (entries.length > max) {
        ctx.issues.push({
          code: 'custom',
          message: `has ${entries.length} entries; at most ${max}`,
          input: v,
        });
        return z.NEVER;
      }
      const out: Record<string, string> = {};
      for (const [k, raw] of entries) {
        const s = text(raw);
        const problem =
          checkKey(k) ??
          (s === null
            ? raw === null
              ? 'has no value; write "" for an empty one'
              : `must be a string, not ${describe(raw)}`
            : checkValue(k, s));
        if (problem) ctx.issues.push({ code: 'custom', message: problem, input: raw, path: [k] });
        else out[k] = s as string;
      }
      return out;
    });
}

const env = stringMap(
  (k) =>
    ENV_NAME_RE.test(k)
      ? null
      : `"${k}" is not a variable name: letters, digits and "_", not starting with a digit`,
  (_k, s) =>
    s.length > MAX_ENV_VALUE_CHARS
      ? `is longer than ${MAX_ENV_VALUE_CHARS} characters`
      : s.includes('\0')
        ? 'contains a NUL character'
        : null,
  MAX_ENV_VARS,
  'variable names to values',
);

const labels = stringMap(
  labelKeyProblem,
  (_k, s) => labelValueProblem(s),
  MAX_LABELS,
  'label names to values',
);

const checkNodes = (v: unknown): Answer<string[]> => {
  if (v === undefined || v === null) return ok([]);
  if (!Array.isArray(v))
    return no(`must be a list of node short IDs, e.g. [4f2a8b], not ${describe(v)}`);
  if (v.length > MAX_CONSTRAINT_NODES)
    return no(`has ${v.length} entries; at most ${MAX_CONSTRAINT_NODES}`);
  const out: string[] = [];
  for (const [i, item] of v.entries()) {
    const s = text(item)?.trim().toLowerCase();
    if (s === undefined || !NODE_SHORT_ID_RE.test(s)) {
      return no(
        `${describe(item)} is not a node short ID: 6 hex characters, as \`peerway nodes\` shows`,
        i,
      );
    }
    if (!out.includes(s)) out.push(s);
  }
  return ok(out);
};

/** A mapping's own shape errors: what it must be when it is something else. */
function mappingError(path: string) {
  return (iss: { code: string; input?: unknown }) =>
    iss.code === 'invalid_type'
      ? `must be a mapping with ${FIELDS[path]?.join(', ')}, not ${describe(iss.input)}`
      : undefined;
}

const resources = z
  .strictObject(
    {
      cpu: z.unknown().optional(),
      cpuMillis: z.unknown().optional(),
      memory: z.unknown().optional(),
      memoryBytes: z.unknown().optional(),
      gpu: z.unknown().optional(),
    },
    { error: mappingError('resources') },
  )
  .transform((r, ctx): ReplicaResources => {
    const issue = (path: string, message: string, input: unknown) => {
      ctx.issues.push({ code: 'custom', message, input, path: [path] });
    };
    let cpuMillis: number = DEPLOYMENT_DEFAULTS.resources.cpuMillis;
    if (r.cpu !== undefined && r.cpuMillis !== undefined) {
      issue('cpuMillis', 'give cpu or cpuMillis, not both', r.cpuMillis);
    } else if (r.cpuMillis !== undefined) {
      const c = integer(r.cpuMillis, {
        min: MIN_CPU_MILLIS,
        max: MAX_CPU_MILLIS,
        unit: 'millicores',
      });
      if (c.ok) cpuMillis = c.value;
      else issue('cpuMillis', c.message, r.cpuMillis);
    } else if (r.cpu !== undefined) {
      const c = parseCpu(r.cpu);
      if (!c.ok) issue('cpu', c.message, r.cpu);
      else if (c.value < MIN_CPU_MILLIS || c.value > MAX_CPU_MILLIS) {
        issue(
          'cpu',
          `${describe(r.cpu)} is out of range: from ${MIN_CPU_MILLIS / 1000} to ${MAX_CPU_MILLIS / 1000} cores (${CPU_HELP})`,
          r.cpu,
        );
      } else cpuMillis = c.value;
    }
    let memoryBytes: number = DEPLOYMENT_DEFAULTS.resources.memoryBytes;
    const memKey = r.memoryBytes !== undefined ? 'memoryBytes' : 'memory';
    const memRaw = r.memoryBytes ?? r.memory;
    if (r.memory !== undefined && r.memoryBytes !== undefined) {
      issue('memoryBytes', 'give memory or memoryBytes, not both', r.memoryBytes);
    } else if (memRaw !== undefined) {
      const m =
        memKey === 'memoryBytes'
          ? integer(memRaw, { min: 0, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' })
          : parseSize(memRaw);
      if (!m.ok) issue(memKey, m.message, memRaw);
      else if (m.value < MIN_MEMORY_BYTES || m.value > MAX_MEMORY_BYTES) {
        const hint =
          typeof memRaw === 'number' && memRaw < MIN_MEMORY_BYTES && memKey === 'memory'
            ? ` (a plain number is bytes: did you mean ${memRaw}MiB?)`
            : '';
        issue(
          memKey,
          `${formatBytes(m.value)} is out of range: from ${formatBytes(MIN_MEMORY_BYTES)} to ${formatBytes(MAX_MEMORY_BYTES)}${hint}; ${SIZE_UNITS_HELP}`,
          memRaw,
        );
      } else memoryBytes = m.value;
    }
    const gpu = integer(r.gpu, {
      min: 0,
      max: MAX_GPUS,
      fallback: DEPLOYMENT_DEFAULTS.resources.gpu,
      unit: 'GPUs',
    });
    if (!gpu.ok) issue('gpu', gpu.message, r.gpu);
    return { cpuMillis, memoryBytes, gpu: gpu.ok ? gpu.value : 0 };
  });

const constraints = z.strictObject(
  { labels, nodes: field(checkNodes) },
  { error: mappingError('constraints') },
);

const checkHealthPath = (v: unknown): Answer<string | null> => {
  if (v === undefined || v === null) return ok(null);
  if (typeof v !== 'string') return no(`must be a path such as /healthz, not ${describe(v)}`);
  if (!v.startsWith('/')) return no(`"${v}" must start with "/", e.g. /healthz`);
  if (v.length > MAX_HEALTH_PATH_CHARS)
    return no(`is longer than ${MAX_HEALTH_PATH_CHARS} characters`);
  if (/[\s#]/.test(v)) return no(`"${v}" must not contain white space or "#"`);
  return ok(v);
};

function seconds(v: unknown, fallback: number, min: number): Answer<number> {
  if (v === undefined) return ok(fallback);
  const range = `a number of seconds from ${min} to ${MAX_HEALTH_INTERVAL_S}`;
  if (typeof v !== 'number' || !Number.isFinite(v))
    return no(`must be ${range}, not ${describe(v)}`);
  if (v < min || v > MAX_HEALTH_INTERVAL_S) return no(`${v} is out of range: must be ${range}`);
  return ok(v);
}

const health = z
  .strictObject(
    {
      path: field(checkHealthPath),
      intervalS: field((v) => seconds(v, DEPLOYMENT_DEFAULTS.health.intervalS, 1)),
      timeoutS: field((v) => seconds(v, DEPLOYMENT_DEFAULTS.health.timeoutS, 0.1)),
    },
    { error: mappingError('health') },
  )
  .refine((h) => h.timeoutS <= h.intervalS, {
    message: 'timeoutS must not be longer than intervalS',
    path: ['timeoutS'],
  });

/** The deployment spec schema; `parseDeploymentSpec` is the way to use it. */
export const DeploymentSpecSchema = z
  .strictObject(
    {
      name: field(checkName),
      image: field(checkImage),
      port: field((v) => integer(v, { min: 1, max: 65535 })),
      command: field(checkArgv('command')),
      args: field(checkArgv('args')),
      env,
      replicas: field((v) =>
        integer(v, { min: 1, max: MAX_REPLICAS, fallback: DEPLOYMENT_DEFAULTS.replicas }),
      ),
      maxPerNode: field((v) =>
        integer(v, { min: 1, max: MAX_REPLICAS, fallback: DEPLOYMENT_DEFAULTS.maxPerNode }),
      ),
      resources: resources.prefault({}),
      constraints: constraints.prefault({}),
      placement: field(oneOf(PLACEMENTS, DEPLOYMENT_DEFAULTS.placement)),
      health: health.prefault({}),
      access: field(oneOf(ACCESS_MODES, DEPLOYMENT_DEFAULTS.access)),
      restart: field(oneOf(RESTART_POLICIES, DEPLOYMENT_DEFAULTS.restart)),
    },
    {
      error: (iss) =>
        iss.code === 'invalid_type' && (iss.path ?? []).length === 0
          ? `a deployment spec must be a mapping (YAML) or an object (JSON) with at least name, image and port, not ${describe(iss.input)}`
          : undefined,
    },
  )
  .transform((s): DeploymentSpec => s);

/** `['constraints', 'nodes', 1]` → `constraints.nodes[1]`. */
export function formatSpecPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += (out === '' ? '' : '.') + String(p);
  }
  return out;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function unknownFieldMessage(parent: string, key: string): string {
  const known = FIELDS[parent] ?? [];
  const near = known
    .map((k) => ({ k, d: editDistance(key.toLowerCase(), k.toLowerCase()) }))
    .filter((x) => x.d <= Math.max(1, Math.floor(x.k.length / 3)))
    .sort((x, y) => x.d - y.d)[0];
  return `unknown field "${key}"${near ? ` (did you mean "${near.k}"?)` : ''}; ${parent === '' ? 'a spec' : parent} takes ${known.join(', ')}`;
}

/**
 * Validates a deployment spec (from JSON, or YAML already read) and fills
 * in its defaults. Every problem is reported at once, each with the path of
 * its field and a message that names the allowed values or units.
 */
export function parseDeploymentSpec(input: unknown): SpecResult {
  const r = DeploymentSpecSchema.safeParse(input, {
    error: (iss) => {
      if (iss.code === 'invalid_type') {
        const expected =
          { object: 'a mapping', array: 'a list' }[iss.expected as string] ?? `a ${iss.expected}`;
        return `must be ${expected}, not ${describe(iss.input)}`;
      }
      return undefined;
    },
  });
  if (r.success) return { ok: true, spec: r.data };
  const errors: SpecError[] = [];
  for (const iss of r.error.issues) {
    if (iss.code === 'unrecognized_keys') {
      const parent = formatSpecPath(iss.path);
      for (const key of iss.keys) {
        errors.push({
          path: formatSpecPath([...iss.path, key]),
          message: unknownFieldMessage(parent, key),
        });
      }
    } else {
      errors.push({ path: formatSpecPath(iss.path), message: iss.message });
    }
  }
  return { ok: false, errors };
}
