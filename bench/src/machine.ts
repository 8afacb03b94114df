/**
 * What the benches read about the machine and their processes (Linux
 * /proc): how busy the whole machine was over a run (a loaded run says
 * so), a process's CPU seconds, and percentiles; and the processes they
 * start (a redis-server of their own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** USER_HZ on Linux: /proc's CPU times are in these ticks. */
const TICKS = 100;

/** CPU seconds the whole machine spent busy so far (all cores). */
export function machineBusyS(): number {
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = f.map(Number);
  return (n[0]! + n[1]! + n[2]! + n[5]! + n[6]! + n[7]!) / TICKS;
}

/** User and system CPU seconds of a process so far. */
export function procUserSys(pid: number): [number, number] {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return [Number(f[11]) / TICKS, Number(f[12]) / TICKS];
}

/** CPU seconds (user + system) of a process so far. */
export function procCpuS(pid: number): number {
  const [u, s] = procUserSys(pid);
  return u + s;
}

/** The p-th percentile (0–100) of xs, by rank; NaN for none. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/** A child process this bench started, stopped with SIGTERM (SIGKILL after 5 s). */
export class Child {
  constructor(readonly proc: ChildProcess) {}
  get pid(): number {
    return this.proc.pid!;
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  }
}

/** A redis-server of the bench's own on a random loopback port, nothing saved to disk. */
export async function startRedis(dir: string): Promise<{ child: Child; port: number }> {
  const port = 21000 + Math.floor(Math.random() * 20000);
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (l) => l.includes('Ready to accept connections') && resolve());
    proc.once('exit', (c) => reject(new Error(`redis-server exited ${c}`)));
  });
  return { child: new Child(proc), port };
}
