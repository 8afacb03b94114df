/**
 * The node's capacity as the agent reports it to the server: CPU cores,
 * memory, free disk where the agent keeps its data, GPUs (from `nvidia-smi`
 * where it is installed), OS and architecture, and the container runtime.
 */
import { execFile } from 'node:child_process';
import { existsSync, statfsSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Gpu, NodeCapacity } from '@peerway/protocol';
import type { Detection } from './types';

/** A GPU as reported: its model and memory. */
export type GpuInfo = Gpu;
export type { NodeCapacity };

/** How long `nvidia-smi` may take, in ms. */
export const NVIDIA_SMI_TIMEOUT_MS = 5_000;
export const NVIDIA_SMI_ARGS = ['--query-gpu=name,memory.total', '--format=csv,noheader'];

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
};

/**
 * Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader`:
 * one line per GPU, e.g. `NVIDIA GeForce RTX 3090, 24576 MiB` (MiB when no
 * unit is given, as with `nounits`). Lines it cannot read are skipped.
 */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const comma = line.lastIndexOf(',');
    if (comma <= 0) continue;
    const model = line.slice(0, comma).trim();
    const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(line.slice(comma + 1).trim());
    if (!model || !m) continue;
    const unit = UNIT_BYTES[(m[2] || 'MiB').toLowerCase()];
    if (unit === undefined) continue;
    gpus.push({ model, memoryBytes: Math.round(Number(m[1]) * unit) });
  }
  return gpus;
}

/** GPUs via `nvidia-smi`; none when it is not installed or fails (said in the log). */
export function detectGpus(log?: Logger, bin = 'nvidia-smi'): Promise<GpuInfo[]> {
  return new Promise((res) => {
    execFile(bin, NVIDIA_SMI_ARGS, { timeout: NVIDIA_SMI_TIMEOUT_MS }, (err, stdout) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          log?.warn({ err: err.message }, 'nvidia-smi failed: reporting no GPUs');
        }
        res([]);
        return;
      }
      res(parseNvidiaSmi(stdout));
    });
  });
}

/** Free bytes for unprivileged users on the file system holding `dir` (or its nearest existing parent). */
export function diskFreeBytes(dir: string): number {
  let p = resolve(dir);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  const s = statfsSync(p);
  return s.bavail * s.bsize;
}

/** The node's capacity report. */
export async function nodeCapacity(opts: {
  dataDir: string;
  runtime: Detection | null;
  log?: Logger;
  nvidiaSmi?: string;
}): Promise<NodeCapacity> {
  return {
    cpuCores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    diskFreeBytes: diskFreeBytes(opts.dataDir),
    gpus: await detectGpus(opts.log, opts.nvidiaSmi),
    os: os.platform(),
    arch: os.arch(),
    runtime:
      opts.runtime?.ok === true
        ? { name: opts.runtime.runtime.name, version: opts.runtime.runtime.version }
        : null,
  };
}
