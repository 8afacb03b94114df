/**
 * "npm install works", proven: every publishable package is packed with
 * `npm pack` (its prepack builds it), the tarballs are installed into an
 * empty directory outside the repository (no workspace, no node_modules from
 * the clone), and the installed bins are what run here: the server serves its
 * dashboard and a service shell, the agent is set up with the commands the
 * README gives a node owner, is claimed by its token, and real Chromium opens
 * its service.
 */
import { execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Proc, Stack, type StackUser } from '../support/stack';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const PACKAGES = [
  '@peerway/protocol',
  '@peerway/node-agent',
  '@peerway/signaling-server',
  '@peerway/cli',
];
const work = mkdtempSync(join(tmpdir(), 'pw-pack-'));
const tarballs = join(work, 'tarballs');
const prefix = join(work, 'install'); // the empty directory the user installs into
const installed = (pkg: string) => join(prefix, 'node_modules', pkg);
const timings: Record<string, number> = {};

let stack: Stack;
let upstream: http.Server;
let upstreamPort = 0;
let owner: StackUser;

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings[name] = Math.round(performance.now() - t0);
  }
}

beforeAll(async () => {
  mkdirSync(tarballs, { recursive: true });
  await timed('pack', () =>
    run('npm', ['pack', ...PACKAGES.flatMap((p) => ['-w', p]), '--pack-destination', tarballs], {
      cwd: ROOT,
      maxBuffer: 64 << 20,
    }).then(() => undefined),
  );
  // an empty project, as a user makes one (`npm init -y`)
  mkdirSync(prefix, { recursive: true });
  writeFileSync(join(prefix, 'package.json'), '{ "name": "pw-install-try", "private": true }\n');
  const files = readdirSync(tarballs).filter((f) => f.endsWith('.tgz'));
  // Any @peerway package npm wanted from a registry (not from these tarballs)
  // would be fetched from an address nothing listens on, and fail the install.
  await timed('install', () =>
    run(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-audit',
        '--no-fund',
        '--@peerway:registry=http://127.0.0.1:9/',
        ...files.map((f) => join(tarballs, f)),
      ],
      { cwd: prefix, maxBuffer: 64 << 20 },
    ).then(() => undefined),
  );
  stack = new Stack({
    server: join(installed('@peerway/signaling-server'), 'bin/peerway-server.js'),
    agent: join(installed('@peerway/node-agent'), 'bin/peerway-agent.js'),
  });
  upstream = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>from-tarballs</title><h1 id="hello">installed ${req.url}</h1>`);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as { port: number }).port;
  stack.onStop(() => new Promise<void>((r) => upstream.close(() => r())));
}, 900_000);

afterAll(async () => {
  console.log(`[packaging] ${JSON.stringify(timings)}`);
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

it('the tarballs hold built code and what users need, and nothing of the repository', async () => {
  for (const pkg of PACKAGES) {
    const dir = installed(pkg);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      private?: boolean;
      exports: Record<string, { default?: string; types?: string } | string>;
      dependencies?: Record<string, string>;
    };
    expect(manifest.private, pkg).toBeUndefined();
    expect(existsSync(join(dir, 'src')), `${pkg} ships no sources`).toBe(false);
    expect(existsSync(join(dir, 'test')), `${pkg} ships no tests`).toBe(false);
    for (const [sub, target] of Object.entries(manifest.exports)) {
      if (typeof target === 'string') continue;
      expect(existsSync(join(dir, target.default!)), `${pkg} ${sub} → ${target.default}`).toBe(
        true,
      );
      expect(existsSync(join(dir, target.types!)), `${pkg} ${sub} types`).toBe(true);
    }
    for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
      expect(range, `${pkg} → ${dep}`).not.toBe('*');
      expect(dep, `${pkg} needs no TypeScript runner`).not.toBe('tsx');
    }
  }
  // every bin answers --version from the install
  for (const [pkg, bin] of [
    ['@peerway/node-agent', 'bin/peerway-agent.js'],
    ['@peerway/signaling-server', 'bin/peerway-server.js'],
    ['@peerway/cli', 'bin/peerway.js'],
  ] as const) {
    const v = await run(process.execPath, [join(installed(pkg), bin), '--version']);
    expect(v.stdout.trim(), pkg).toBe('0.1.0');
  }
  // no TypeScript runner anywhere in what was installed
  expect(existsSync(join(prefix, 'node_modules/tsx'))).toBe(false);
  // the dashboard and the shell ship inside the server package
  const web = join(installed('@peerway/signaling-server'), 'web');
  for (const f of ['shell.html', 'early.js', 'shell.js', 'sw.js', 'shim.js', 'dash/dashboard.html'])
    expect(existsSync(join(web, f)), f).toBe(true);
  // the library entries load as plain Node ESM from the install
  const { stdout } = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const p = await import('@peerway/protocol');
       const n = await import('@peerway/protocol/node');
       const a = await import('@peerway/node-agent');
       const s = await import('@peerway/signaling-server');
       console.log(typeof p.isValidServiceName, typeof n.generateIdentity, typeof a.Agent, typeof s.startPeerwayServer);`,
    ],
    { cwd: prefix },
  );
  expect(stdout.trim()).toBe('function function function function');
});

it('the installed server serves its dashboard and a service shell; the installed agent is claimed and Chromium opens its service', async () => {
  await stack.start();
  owner = await stack.user();
  // the dashboard (not the 503 "not built" page), and its assets
  const dash = await fetch(`${stack.url}/`);
  expect(dash.status).toBe(200);
  const html = await dash.text();
  const asset = /src="(\/dash\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  expect(asset, html.slice(0, 400)).toBeTruthy();
  expect((await fetch(`${stack.url}${asset}`)).status).toBe(200);

  // the node owner's commands, as the README and the dashboard give them
  const home = join(stack.dir, 'agent-home');
  const agentEnv = { ...process.env, PEERWAY_HOME: home, PEERWAY_LOG_LEVEL: 'warn' };
  const agent = (args: string[]) =>
    run(process.execPath, [stack.agentBin, ...args], { env: agentEnv });
  await agent(['init', '--server', stack.url, '--name', 'packed']);
  await agent(['login', owner.token]);
  await agent(['expose', 'packed', String(upstreamPort), '--public']);
  const node = new Proc(
    spawn(process.execPath, [stack.agentBin, 'run'], {
      env: agentEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  stack.onStop(() => node.stop());
  await node.waitFor(/✓ http:\/\/packed\./, 60_000);

  // the owner signs in on the dashboard and sees the node online
  const ctx = await stack.context();
  const page = await ctx.newPage();
  await page.goto(`${stack.url}/signin?next=%2Fnodes`);
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Password').fill(owner.password);
  await Promise.all([
    page.waitForURL(`${stack.url}/nodes`),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const status = page.locator('article[data-node] [data-status]').first();
  await expect.poll(() => status.getAttribute('data-status'), { timeout: 20_000 }).toBe('online');

  // a visitor opens the service through the shell, peer to peer
  const visitor = await (await stack.context()).newPage();
  await visitor.goto(stack.serviceUrl('packed', '/deep/link'));
  await expect
    .poll(() => Stack.app(visitor).locator('#hello').textContent(), { timeout: 30_000 })
    .toBe('installed /deep/link');
}, 180_000);
