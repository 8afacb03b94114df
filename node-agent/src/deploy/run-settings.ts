/**
 * The deployment settings a running `peerway-agent run` uses (flags
 * included), kept in $PEERWAY_HOME/run-deploy.json (mode 0600) while it
 * runs, so `status` shows what the node really offers. A file whose
 * process is gone is ignored.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { DeploySettings } from './settings';

const RunDeploySchema = z.object({
  pid: z.number().int(),
  enabled: z.boolean(),
  cpuCores: z.number().nullable(),
  memoryBytes: z.number().nullable(),
  labels: z.record(z.string(), z.string()),
  registries: z.array(z.string()),
  /** The container engine in words: "podman 4.3.1 at /path.sock", or why there is none. */
  runtime: z.string().optional(),
});
export type RunDeploySettings = z.output<typeof RunDeploySchema>;

const path = (dir: string) => join(dir, 'run-deploy.json');

/** Records the settings this process runs with. */
export function writeRunDeploy(dir: string, s: DeploySettings, runtime?: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = path(dir);
  const body: RunDeploySettings = { pid: process.pid, ...s, ...(runtime ? { runtime } : {}) };
  writeFileSync(`${p}.${process.pid}.tmp`, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${p}.${process.pid}.tmp`, p);
}

/** Removes the file if this process wrote it. */
export function clearRunDeploy(dir: string): void {
  if (readRunDeploy(dir)?.pid === process.pid) rmSync(path(dir), { force: true });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The running agent's deployment settings, or null when none runs from this home. */
export function readRunDeploy(dir: string): RunDeploySettings | null {
  const p = path(dir);
  if (!existsSync(p)) return null;
  try {
    const r = RunDeploySchema.safeParse(JSON.parse(readFileSync(p, 'utf8')));
    return r.success && alive(r.data.pid) ? r.data : null;
  } catch {
    return null;
  }
}
