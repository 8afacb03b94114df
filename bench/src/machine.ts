/**
 * What the benches read about the machine and their processes (Linux
 * /proc): how busy the whole machine was over a run (a loaded run says
 * so), a process's CPU seconds, and percentiles; and the processes they
 * start (a redis-server of their own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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

/** CPU seconds of this process, its live descendants and the children it has reaped. */
function treeCpuS(root = process.pid): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const f = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]!.split(' ');
      parent.set(Number(name), Number(f[1]));
      cpu.set(Number(name), (Number(f[11]) + Number(f[12])) / TICKS);
    } catch {
      // gone meanwhile
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++)
      if (p === root) return true;
    return false;
  };
  let sum = 0;
  for (const [pid, s] of cpu) if (inTree(pid)) sum += s;
  const self = readFileSync(`/proc/${root}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return sum + (Number(self[13]) + Number(self[14])) / TICKS; // + reaped children
}

/** How loaded the machine was over a run, and how much of it was not this benchmark. */
export interface RunLoad {
  /** When the run started (ISO). */
  date: string;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  /** The whole machine's busy CPU over the run, % of all cores. */
  machineBusyPct: number;
  /** The part of it that was not this benchmark's processes (other work on the machine). */
  otherBusyPct: number;
}

/**
 * Starts sampling the machine's load; `end()` says how busy it was over the
 * run and how much of that was other work. Processes the bench starts in
 * other ways (network namespaces, a detached server) count as other unless
 * they are its descendants.
 */
export function startLoadSample(): { end(): RunLoad } {
  const date = new Date().toISOString();
  const load0 = loadavg();
  const busy0 = machineBusyS();
  const own0 = treeCpuS();
  const t0 = performance.now();
  return {
    end() {
      const wallS = (performance.now() - t0) / 1000;
      const busy = machineBusyS() - busy0;
      const own = Math.max(0, treeCpuS() - own0);
      const pct = (s: number) => +((s / wallS / cpus().length) * 100).toFixed(0);
      return {
        date,
        loadAverageStart: load0.map((x) => +x.toFixed(2)),
        loadAverageEnd: loadavg().map((x) => +x.toFixed(2)),
        machineBusyPct: pct(busy),
        otherBusyPct: pct(Math.max(0, busy - own)),
      };
    },
  };
}

/** The line a bench prints under its tables about the run's load. */
export function loadLine(l: RunLoad): string {
  const loaded =
    l.otherBusyPct >= 25 ? ' **This machine was loaded by other work: read the ratios.**' : '';
  return `Run of ${l.date.slice(0, 16)}Z; the machine's cores were busy ${l.machineBusyPct} % on average (work other than this benchmark: ${l.otherBusyPct} %); load average ${l.loadAverageStart[0]} at start.${loaded}`;
}
