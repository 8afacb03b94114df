/**
 * A real Peerway stack for end-to-end tests: the server and the agent as
 * child processes (their bins), upstream apps on 127.0.0.1:0, and Debian's
 * Chromium through playwright-core. Everything is stopped by `stop()`, also
 * when a test fails.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './chromium';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
export const SERVER_BIN = join(ROOT, 'signaling-server/bin/peerway-server.js');
const AGENT_BIN = join(ROOT, 'node-agent/bin/peerway-agent.js');
export const ARTIFACTS = join(ROOT, 'e2e/artifacts');
export class Proc {
  out = '';
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
  }
  waitFor(re: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpExecArray> {
    return new Promise((res, rej) => {
      const t = setInterval(() => {
        const m = re.exec(this.out.slice(from));
        if (m) {
          clearInterval(t);
          clearTimeout(to);
          res(m);
        }
      }, 25);
      const to = setTimeout(() => {
        clearInterval(t);
        rej(new Error(`timed out waiting for ${re}; output:\n${this.out.slice(-3000)}`));
      }, timeoutMs);
    });
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(t);
  }
}

export interface StackUser {
  email: string;
  password: string;
  token: string;
}

export class Stack {
  readonly dir = mkdtempSync(join(tmpdir(), 'pw-e2e-'));
  /** The bins it runs: the repository's, or (the packaging test) those installed from the tarballs. */
  readonly serverBin: string;
  readonly agentBin: string;
  constructor(bins: { server?: string; agent?: string } = {}) {
    this.serverBin = bins.server ?? SERVER_BIN;
    this.agentBin = bins.agent ?? AGENT_BIN;
  }
  server!: Proc;
  url = '';
  port = 0;
  private procs: Proc[] = [];
  private cleanups: (() => Promise<void> | void)[] = [];
  browser: Browser | null = null;

  /** Starts the server process on a free port. */
  async start(extraArgs: string[] = []): Promise<void> {
    this.server = this.spawn(
      this.serverBin,
      [
        '--port',
        String(this.port || 0),
        '--data-dir',
        join(this.dir, 'data'),
        '--heartbeat-interval-ms',
        '1000',
        ...extraArgs,
      ],
      {},
    );
    const m = await this.server.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    this.port = Number(m[1]);
    this.url = `http://localhost:${this.port}`;
  }

  protected spawn(bin: string, args: string[], env: Record<string, string>): Proc {
    const p = new Proc(
      spawn(process.execPath, [bin, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          PEERWAY_LOG_LEVEL: process.env.E2E_DEBUG ? 'debug' : 'warn',
          ...env,
        },
      }),
    );
    // E2E_DEBUG=1: every process's log on this test's stderr
    if (process.env.E2E_DEBUG)
      for (const s of [p.child.stdout, p.child.stderr])
        s?.on('data', (d) => process.stderr.write(d));
    this.procs.push(p);
    return p;
  }

  /** Where the CLI finds the server's store. */
  protected storeArgs(): string[] {
    return ['--data-dir', join(this.dir, 'data')];
  }

  /** A user made with the CLI, with a personal access token. */
  async user(admin = false): Promise<StackUser> {
    const email = `u-${randomBytes(4).toString('hex')}@test.invalid`;
    const password = randomBytes(12).toString('base64url');
    await run(process.execPath, [
      this.serverBin,
      'users',
      'create',
      '--email',
      email,
      '--password',
      password,
      ...this.storeArgs(),
      ...(admin ? ['--admin'] : []),
    ]);
    const { stdout } = await run(process.execPath, [
      this.serverBin,
      'tokens',
      'create',
      '--email',
      email,
      ...this.storeArgs(),
    ]);
    return { email, password, token: stdout.trim() };
  }

  /** Starts an agent process serving `services` (NAME=TARGET[,public]); resolves when they are routable. */
  async agent(
    token: string,
    services: string[],
    home = join(this.dir, `agent-${randomBytes(3).toString('hex')}`),
    extraArgs: string[] = [],
  ): Promise<Proc & { home: string }> {
    mkdirSync(home, { recursive: true });
    const p = this.spawn(
      this.agentBin,
      [
        'run',
        '--server',
        this.url,
        '--token',
        token,
        ...services.flatMap((s) => ['--service', s]),
        ...extraArgs,
      ],
      { PEERWAY_HOME: home },
    );
    for (const s of services) await p.waitFor(new RegExp(`✓ http://${s.split('=')[0]}\\.`));
    return Object.assign(p, { home });
  }

  /**
   * An agent with no token: it connects unclaimed and prints its claim link
   * (the short /c/ form), which this returns.
   */
  async unclaimedAgent(
    services: string[],
    name = 'attic',
  ): Promise<{ proc: Proc; claimUrl: string; shortId: string }> {
    const home = join(this.dir, `agent-${randomBytes(3).toString('hex')}`);
    mkdirSync(home, { recursive: true });
    const proc = this.spawn(
      this.agentBin,
      ['run', '--server', this.url, '--name', name, ...services.flatMap((s) => ['--service', s])],
      { PEERWAY_HOME: home },
    );
    const m = await proc.waitFor(/as node ([0-9a-f]{6})[\s\S]*?(http:\/\/\S+\/c\/\S+)/);
    return { proc, shortId: m[1]!, claimUrl: m[2]! };
  }

  /** A fresh Chromium context (its own profile: cookies, storage, service workers). */
  async context(): Promise<BrowserContext> {
    this.browser ??= await launchChromium();
    const ctx = await this.browser.newContext({ viewport: { width: 1100, height: 800 } });
    this.cleanups.push(() => ctx.close());
    return ctx;
  }

  serviceUrl(service: string, path = '/'): string {
    return `http://${service}.localhost:${this.port}${path}`;
  }

  /** The app frame of a shell page. */
  static app(page: Page) {
    return page.frameLocator('#app');
  }

  onStop(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  async stop(): Promise<void> {
    for (const fn of this.cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch(() => {});
    await this.browser?.close().catch(() => {});
    for (const p of this.procs) await p.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Saves a screenshot under e2e/artifacts for a person to look at. */
export async function screenshot(
  page: Page,
  name: string,
  opts: { fullPage?: boolean } = {},
): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  try {
    await page.screenshot({ path, ...opts });
  } catch {
    // a navigation was swapping the page out: wait for it to settle, then once more
    await page.waitForLoadState('load').catch(() => {});
    await page.screenshot({ path, ...opts });
  }
}
