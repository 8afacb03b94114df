/**
 * The owner's deployment settings: whether this node runs what the server
 * assigns (`--deployments`), the caps on what it offers (`--deploy-cpu`,
 * `--deploy-memory`), its labels (`--label k=v`) and the registries it
 * pulls from (`--registry HOST`). The same keys live in config.json
 * (`deployments`, `deployCpu`, `deployMemory`, `labels`, `registries`);
 * a flag given on the command line replaces that key of the file.
 *
 * Light on purpose: every command loads it with config.json.
 */
import { z } from 'zod';
import {
  CPU_HELP,
  MAX_LABELS,
  PeerwayError,
  SIZE_UNITS_HELP,
  formatBytes,
  formatCpu,
  labelKeyProblem,
  labelValueProblem,
  parseCpu,
  parseLabelArg,
  parseSize,
} from '@peerway/protocol';
import { normaliseRegistryHost } from '../runtime/image-ref';

/** The owner's deployment settings, validated. */
export interface DeploySettings {
  /** Runs what the server assigns; false: refuses every allocation. */
  enabled: boolean;
  /** The cap on CPU cores deployments may use; null: the whole machine. */
  cpuCores: number | null;
  /** The cap on memory deployments may use, in bytes; null: the whole machine. */
  memoryBytes: number | null;
  labels: Record<string, string>;
  /** Registries images may come from (host[:port], normalised); empty allows none. */
  registries: string[];
}

export const NO_DEPLOYMENTS: DeploySettings = {
  enabled: false,
  cpuCores: null,
  memoryBytes: null,
  labels: {},
  registries: [],
};

/** `where: ` before a message, for flags; config.json's errors name their key already. */
const at = (where: string | null) => (where ? `${where}: ` : '');

const REGISTRY_HINT = 'a host or host:port such as registry.example or 127.0.0.1:5000';

/** CPU cores from `--deploy-cpu` or `deployCpu`: a positive number of cores or millicores ("500m"). */
export function parseDeployCpu(v: unknown, where: string | null): number {
  const r = parseCpu(v);
  if (!r.ok) throw new PeerwayError('bad_request', `${at(where)}${r.message}`);
  if (r.value <= 0)
    throw new PeerwayError('bad_request', `${at(where)}must be more than 0 cores (${CPU_HELP})`);
  return r.value / 1000;
}

/** Bytes from `--deploy-memory` or `deployMemory`, in the units deployment specs use. */
export function parseDeployMemory(v: unknown, where: string | null): number {
  const r = parseSize(v);
  if (!r.ok) throw new PeerwayError('bad_request', `${at(where)}${r.message}`);
  if (r.value <= 0)
    throw new PeerwayError('bad_request', `${at(where)}must be more than 0 (${SIZE_UNITS_HELP})`);
  return r.value;
}

/** A registry host from `--registry` or `registries`, normalised (lower case, Docker Hub as docker.io). */
export function parseRegistry(v: string, where: string): string {
  const s = v.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s);
  if (scheme) {
    const host = s.slice(scheme[0].length).replace(/\/.*$/, '');
    throw new PeerwayError(
      'bad_request',
      `${where} "${v}": leave out the scheme and any path, e.g. ${where} ${host || 'registry.example'}`,
    );
  }
  try {
    return normaliseRegistryHost(s);
  } catch {
    throw new PeerwayError(
      'bad_request',
      `${where} "${v}" is not a registry: give ${REGISTRY_HINT}`,
    );
  }
}

/** `--label k=v` flags as a label set; a key given twice is an error. */
export function parseLabelFlags(args: readonly string[], flag = '--label'): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const arg of args) {
    const r = parseLabelArg(arg);
    if (!r.ok) throw new PeerwayError('bad_request', `${flag} ${arg}: ${r.message}`);
    const [k, v] = r.value;
    if (k in labels && labels[k] !== v)
      throw new PeerwayError(
        'bad_request',
        `${flag} ${arg}: label "${k}" is given twice (${k}=${labels[k]} and ${k}=${v}); give it once`,
      );
    labels[k] = v;
  }
  if (Object.keys(labels).length > MAX_LABELS)
    throw new PeerwayError('bad_request', `${flag}: at most ${MAX_LABELS} labels`);
  return labels;
}

/** A zod field that runs one of the parsers above and turns its error into an issue. */
export function checked<T>(parse: (v: unknown) => T) {
  return z.unknown().transform((v, ctx): T => {
    try {
      return parse(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
}

/** The deployment keys of config.json, as they are written there. */
export const DeployConfigShape = {
  deployments: z.boolean().default(false),
  deployCpu: checked((v) => parseDeployCpu(v, null)).optional(),
  deployMemory: checked((v) => parseDeployMemory(v, null)).optional(),
  labels: z
    .record(z.string(), z.string())
    .superRefine((l, ctx) => {
      for (const [k, v] of Object.entries(l)) {
        const problem = labelKeyProblem(k) ?? labelValueProblem(v);
        if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [k] });
      }
      if (Object.keys(l).length > MAX_LABELS)
        ctx.addIssue({ code: 'custom', message: `at most ${MAX_LABELS} labels` });
    })
    .default({}),
  registries: z
    .array(
      z.string().transform((s, ctx) => {
        try {
          return parseRegistry(s, 'registries');
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: (e as Error).message });
          return z.NEVER;
        }
      }),
    )
    .max(64)
    .default([]),
};

/** The deployment keys of a parsed config.json. */
export interface DeployConfig {
  deployments: boolean;
  deployCpu?: number | undefined;
  deployMemory?: number | undefined;
  labels: Record<string, string>;
  registries: string[];
}

/** The flags of `peerway-agent run` that concern deployments, as commander gives them. */
export interface DeployFlags {
  deployments?: boolean;
  deployCpu?: string;
  deployMemory?: string;
  label?: string[];
  registry?: string[];
}

/** The settings a run uses: each flag given replaces its key of config.json. */
export function deploySettings(cfg: DeployConfig, flags: DeployFlags = {}): DeploySettings {
  const registries =
    flags.registry !== undefined
      ? [...new Set(flags.registry.map((r) => parseRegistry(r, '--registry')))]
      : cfg.registries;
  return {
    enabled: flags.deployments === true || cfg.deployments,
    cpuCores:
      flags.deployCpu !== undefined
        ? parseDeployCpu(flags.deployCpu, '--deploy-cpu')
        : (cfg.deployCpu ?? null),
    memoryBytes:
      flags.deployMemory !== undefined
        ? parseDeployMemory(flags.deployMemory, '--deploy-memory')
        : (cfg.deployMemory ?? null),
    labels: flags.label !== undefined ? parseLabelFlags(flags.label) : cfg.labels,
    registries,
  };
}

/** The settings in words, one line each (for `status` and the start of `run`). */
export function describeDeploySettings(s: DeploySettings): string[] {
  const labels = Object.entries(s.labels).map(([k, v]) => `${k}=${v}`);
  return [
    s.enabled
      ? `on (offers ${s.cpuCores === null ? 'all CPUs' : formatCpu(Math.round(s.cpuCores * 1000))}, ${s.memoryBytes === null ? 'all memory' : formatBytes(s.memoryBytes)})`
      : 'off (peerway-agent run --deployments turns them on)',
    `labels ${labels.length ? labels.join(', ') : '(none)'}`,
    `registries ${s.registries.length ? s.registries.join(', ') : '(none: images can be pulled from no registry; add --registry HOST)'}`,
  ];
}
