/**
 * What a running `peerway-agent run` serves, kept in $PEERWAY_HOME/run.json
 * (mode 0600) while it runs, so `status` can tell the truth when the agent
 * was started with flags (--server, --token, --service) rather than from
 * config.json, or before the last `expose`. Written at start, updated as
 * the server answers, removed on exit; a file whose process is gone is
 * ignored.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { homeDir } from './home';

const RunStateSchema = z.object({
  pid: z.number().int(),
  startedAt: z.number(),
  server: z.string(),
  name: z.string(),
  /** The token it runs with (the same secret config.json may hold, same mode). */
  token: z.string().optional(),
  services: z.array(z.object({ name: z.string(), target: z.string(), public: z.boolean() })),
  /** What the server said last: connected, claimed, owner. */
  connected: z.boolean().default(false),
  claimed: z.boolean().optional(),
  owner: z.string().optional(),
});
export type RunState = z.output<typeof RunStateSchema>;

const runPath = (dir: string) => join(dir, 'run.json');

/** Records what this process runs with (replacing what is there). */
export function writeRunState(s: RunState, dir = homeDir()): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = runPath(dir);
  writeFileSync(`${path}.${s.pid}.tmp`, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.${s.pid}.tmp`, path);
}

/** Removes run.json if this process wrote it. */
export function clearRunState(pid = process.pid, dir = homeDir()): void {
  if (readRunState(dir)?.pid === pid) rmSync(runPath(dir), { force: true });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The running agent's state, or null when none runs from this home. */
export function readRunState(dir = homeDir()): RunState | null {
  const path = runPath(dir);
  if (!existsSync(path)) return null;
  try {
    const r = RunStateSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return r.success && alive(r.data.pid) ? r.data : null;
  } catch {
    return null;
  }
}
