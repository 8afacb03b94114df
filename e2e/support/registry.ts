/**
 * A real image registry on loopback for tests: Debian's `docker-registry`
 * (the CNCF distribution registry) on 127.0.0.1 at a free port, with its
 * config and storage in a temp directory, and a test web image built
 * `FROM scratch` around Debian's static busybox (no image can be downloaded
 * here), pushed to it as `127.0.0.1:PORT/peerway-test/web:1`. The image
 * serves `/` and `/healthz` with `busybox httpd` on port 8080.
 *
 * Everything made here carries `peerway.test=<run id>`; `stop()` ends the
 * registry and removes the run's containers and images, also after a
 * failed test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TEST_LABEL, podman, removeLabelled } from './podman';

const BUSYBOX = '/usr/bin/busybox';
/** The port the test image's httpd listens on inside the container. */
export const WEB_PORT = 8080;
const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 15_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class TestRegistry {
  /** Labels everything this run makes; random per run. */
  readonly runId = `r${randomBytes(4).toString('hex')}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'pw-registry-'));
  port = 0;
  private proc: ChildProcess | null = null;
  private log = '';

  /** host:port, e.g. `127.0.0.1:41234`. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The test web image's reference once built. */
  get webImage(): string {
    return `${this.host}/peerway-test/web:1`;
  }

  /** Starts the registry; retries on another port if its port was taken meanwhile. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      try {
        await this.spawnRegistry();
        return;
      } catch (err) {
        if (attempt >= START_ATTEMPTS || !/address already in use/.test(this.log)) throw err;
      }
    }
  }

  private spawnRegistry(): Promise<void> {
    const config = join(this.dir, 'config.yml');
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: info',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(this.dir, 'storage')}`,
        'http:',
        `  addr: 127.0.0.1:${this.port}`,
        `  secret: ${randomBytes(16).toString('hex')}`,
        '',
      ].join('\n'),
    );
    this.log = '';
    const child = spawn('docker-registry', ['serve', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = child;
    const onData = (d: Buffer) => {
      this.log += d.toString();
      if (process.env.E2E_DEBUG) process.stderr.write(`[registry] ${d.toString()}`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail('did not listen in time'), READY_TIMEOUT_MS);
      const check = () => {
        if (this.log.includes('listening on')) {
          done();
          resolve();
        }
      };
      const fail = (why: string) => {
        done();
        child.kill('SIGKILL');
        this.proc = null;
        reject(new Error(`docker-registry ${why}:\n${this.log.slice(-2000)}`));
      };
      const onExit = (code: number | null) => fail(`exited (code ${code})`);
      const done = () => {
        clearTimeout(timer);
        child.stderr.off('data', check);
        child.stdout.off('data', check);
        child.off('exit', onExit);
      };
      child.stderr.on('data', check);
      child.stdout.on('data', check);
      child.once('exit', onExit);
    });
  }

  /**
   * Builds the web image (`FROM scratch`, static busybox, httpd on 8080 with
   * `/index.html` and `/healthz`), pushes it, and removes the local copy so
   * a later pull really comes from the registry. Resolves with its reference
   * and the build and push times.
   */
  async buildWebImage(): Promise<{ image: string; buildMs: number; pushMs: number }> {
    const ctx = join(this.dir, 'web');
    mkdirSync(join(ctx, 'bin'), { recursive: true });
    mkdirSync(join(ctx, 'www'), { recursive: true });
    copyFileSync(BUSYBOX, join(ctx, 'bin/busybox'));
    writeFileSync(join(ctx, 'www/index.html'), `<h1>peerway test web ${this.runId}</h1>\n`);
    writeFileSync(join(ctx, 'www/healthz'), 'ok\n');
    writeFileSync(
      join(ctx, 'Containerfile'),
      [
        'FROM scratch',
        'COPY bin/busybox /bin/busybox',
        'COPY www /www',
        `EXPOSE ${WEB_PORT}`,
        `CMD ["/bin/busybox", "httpd", "-f", "-p", "${WEB_PORT}", "-h", "/www"]`,
        '',
      ].join('\n'),
    );
    const image = this.webImage;
    let t = performance.now();
    await podman(['build', '--label', `${TEST_LABEL}=${this.runId}`, '-t', image, ctx]);
    const buildMs = Math.round(performance.now() - t);
    t = performance.now();
    await podman(['push', '--tls-verify=false', image]);
    const pushMs = Math.round(performance.now() - t);
    await podman(['rmi', image]);
    return { image, buildMs, pushMs };
  }

  /** Ends the registry, removes this run's containers and images and the temp directory. */
  async stop(): Promise<void> {
    const child = this.proc;
    this.proc = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(t);
    }
    try {
      await removeLabelled(this.runId);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
