/**
 * The namespaces one lab piece (the NAT lab, a shaped link) made and the
 * processes it started in them: `destroy()` kills the processes (and any
 * grandchild still inside a namespace) and deletes the namespaces, newest
 * first, also after a failure while building. Idempotent.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

function sh(args: string[]): string {
  return execFileSync(args[0]!, args.slice(1), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export class NamespaceSet {
  /** The namespaces made so far, oldest first. */
  readonly names: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private destroyed = false;

  /** Starts a process inside one of the namespaces; `destroy()` kills it. */
  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
    });
    this.procs.push(p);
    return p;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        const done = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
      }
    }
    for (const ns of [...this.names].reverse()) {
      try {
        // any process still inside (a grandchild) goes with its namespace
        const pids = sh(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean);
        for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // none
      }
      try {
        sh(['ip', 'netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }

  /** The namespaces that still exist (for tests of the teardown). */
  leftovers(): string[] {
    const all = sh(['ip', 'netns', 'list']);
    return this.names.filter((ns) => all.includes(ns));
  }
}
