/**
 * Test fixtures: a real server in-process on port 0, a real agent as a child
 * process (the bin), real upstream HTTP servers on 127.0.0.1:0. Everything
 * started here is stopped by `cleanup()`, also when a test fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseConfig, startPeerwayServer, type PeerwayServer } from '@peerway/signaling-server';

const AGENT_BIN = resolve(import.meta.dirname, '../bin/peerway-agent.js');

export class Fixture {
  private readonly cleanups: (() => Promise<void> | void)[] = [];

  tmp(prefix: string): string {
    const d = mkdtempSync(join(tmpdir(), prefix));
    this.cleanups.push(() => rmSync(d, { recursive: true, force: true }));
    return d;
  }

  onCleanup(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  async server(
    opts: {
      dataDir?: string;
      port?: number;
      presenceTimeoutMs?: number;
      heartbeatIntervalMs?: number;
    } = {},
  ): Promise<PeerwayServer> {
    const server = await startPeerwayServer(
      parseConfig({
        port: opts.port ?? 0,
        dataDir: opts.dataDir ?? this.tmp('pw-server-'),
        presenceTimeoutMs: opts.presenceTimeoutMs ?? 30_000,
        heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 1_000,
      }),
    );
    this.cleanups.push(() => server.close());
    return server;
  }

  /** A user with random credentials and a personal access token. */
  async user(server: PeerwayServer, email = `u-${randomBytes(4).toString('hex')}@test.invalid`) {
    const user = await server.store.createUser({
      email,
      passwordHash: null,
      isAdmin: false,
      externalSubject: null,
    });
    const { token } = await server.auth.createAccessToken(user.id, 'test');
    return { user, token };
  }

  /** Starts `peerway-agent run` as a child process; resolves when its services are accepted. */
  async agent(args: {
    serverUrl: string;
    token?: string;
    services: string[];
    home?: string;
    waitFor?: RegExp;
    extraArgs?: string[];
  }): Promise<AgentProcess> {
    const home = args.home ?? this.tmp('pw-agent-');
    const argv = [
      AGENT_BIN,
      'run',
      '--server',
      args.serverUrl,
      ...(args.token ? ['--token', args.token] : []),
      ...args.services.flatMap((s) => ['--service', s]),
      ...(args.extraArgs ?? []),
    ];
    const proc = spawn(process.execPath, argv, {
      env: {
        ...process.env,
        PEERWAY_HOME: home,
        PEERWAY_LOG_LEVEL: process.env.PEERWAY_LOG_LEVEL ?? 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const a = new AgentProcess(proc, home);
    this.cleanups.push(() => a.kill());
    await a.waitFor(args.waitFor ?? /✓/, 30_000);
    return a;
  }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // keep cleaning
      }
    }
  }
}

export class AgentProcess {
  stdout = '';
  stderr = '';
  private waiters: { re: RegExp; from: number; resolve: () => void }[] = [];

  constructor(
    readonly proc: ChildProcess,
    readonly home: string,
  ) {
    proc.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      this.check();
    });
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      if (w.re.test(this.stdout.slice(w.from))) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  /** Waits until stdout (from now, or from `from`) matches. */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () =>
          reject(
            new Error(
              `agent did not print ${re} within ${timeoutMs} ms.\nstdout: ${this.stdout}\nstderr: ${this.stderr.slice(-2000)}`,
            ),
          ),
        timeoutMs,
      );
      this.waiters.push({ re, from, resolve: () => (clearTimeout(t), resolve()) });
      this.check();
    });
  }

  /** Peak resident set size of the process so far, in bytes (VmHWM). */
  async peakRss(): Promise<number> {
    const { readFile } = await import('node:fs/promises');
    const s = await readFile(`/proc/${this.proc.pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1] ?? 0) * 1024;
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

/** Collects a body into one buffer. */
export async function readAll(body: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) parts.push(c);
  return Buffer.concat(parts);
}
