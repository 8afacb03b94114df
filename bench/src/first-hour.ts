/**
 * `npm run first-hour -w @peerway/bench`: a node owner's first hour, recorded
 * from the packed tarballs, into docs/first-hour/: the terminal (tmux panes,
 * captured as text at each step) and Chromium screenshots.
 *
 * 1. npm pack the three packages and install them into an empty directory
 *    (FIRST_HOUR_PREFIX=<dir> reuses an earlier install).
 * 2. In tmux: a small web app (python3 -m http.server), `peerway-server`, and
 *    the agent: `init`, `expose`, `run` (it prints its claim link).
 * 3. In Chromium: the admin's one-time sign-up link from the server's banner,
 *    the claim link, the claim, the service opened.
 * 4. Ctrl-C the agent: the open page shows the node offline; `run` again: the
 *    page works again without a reload.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium } from '../../e2e/support/chromium';
import { ROOT } from './stack';

const OUT = join(ROOT, 'docs/first-hour');
const SESSION = `pw-first-hour-${process.pid}`;
const PORT = 18080 + (process.pid % 1000);
const APP_PORT = PORT + 1000;
const work = mkdtempSync(join(tmpdir(), 'pw-first-hour-'));
mkdirSync(OUT, { recursive: true });

function sh(cmd: string, args: string[], cwd = ROOT): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
}
const tmux = (...args: string[]) => sh('tmux', args);
const capture = (pane: string) => tmux('capture-pane', '-p', '-J', '-t', `${SESSION}:${pane}`);
const type = (pane: string, line: string) =>
  tmux('send-keys', '-t', `${SESSION}:${pane}`, line, 'Enter');
async function waitIn(pane: string, re: RegExp, ms = 60_000): Promise<RegExpExecArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = re.exec(capture(pane));
    if (m) return m;
    if (Date.now() > end) throw new Error(`no ${re} in pane ${pane}:\n${capture(pane)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const transcript: string[] = [];
const shown = new Map<string, number>();
/** The lines a pane printed since its last step (the QR code left out: it is in the screenshots). */
function record(step: string, pane: string): void {
  const lines = capture(pane).trimEnd().split('\n');
  const fresh = lines.slice(shown.get(pane) ?? 0).filter((l) => !/^[█▀▄ ]+$/.test(l) || !l.trim());
  shown.set(pane, lines.length);
  transcript.push(`## ${step} (${pane})\n\n\`\`\`\n${fresh.join('\n').trim()}\n\`\`\`\n`);
}
async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

let prefix = process.env.FIRST_HOUR_PREFIX ?? '';
try {
  if (!prefix) {
    const tarballs = join(work, 'tarballs');
    mkdirSync(tarballs);
    console.log('packing…');
    sh('npm', [
      'pack',
      ...[
        '@peerway/protocol',
        '@peerway/node-agent',
        '@peerway/signaling-server',
        '@peerway/cli',
      ].flatMap((p) => ['-w', p]),
      '--pack-destination',
      tarballs,
    ]);
    prefix = join(work, 'install');
    mkdirSync(prefix);
    writeFileSync(join(prefix, 'package.json'), '{ "name": "first-hour", "private": true }\n');
    console.log('installing the tarballs (better-sqlite3 builds from source: minutes)…');
    sh(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--@peerway:registry=http://127.0.0.1:9/',
        ...readdirSync(tarballs).map((f) => join(tarballs, f)),
      ],
      prefix,
    );
  }
  const bin = join(prefix, 'node_modules/.bin');
  const home = join(work, 'agent-home');
  const www = join(work, 'www');
  mkdirSync(www);
  writeFileSync(
    join(www, 'index.html'),
    '<!doctype html><title>My app</title><h1>Hello from home</h1>\n',
  );

  tmux('new-session', '-d', '-s', SESSION, '-x', '150', '-y', '45', '-n', 'app');
  tmux('new-window', '-t', SESSION, '-n', 'server');
  tmux('new-window', '-t', SESSION, '-n', 'agent');
  for (const w of ['app', 'server', 'agent'])
    type(w, `export PATH=${bin}:$PATH PEERWAY_HOME=${home} PS1='$ '; clear`);
  type('app', `cd ${www} && python3 -m http.server ${APP_PORT} --bind 127.0.0.1`);
  await waitIn('app', /Serving HTTP/);

  type('server', 'peerway-server --version');
  await waitIn('server', /^\d+\.\d+\.\d+$/m);
  type('server', `peerway-server --port ${PORT} --data-dir ${join(work, 'data')}`);
  const invite = (await waitIn('server', /(http:\/\/localhost:\d+\/signup\?invite=\S+)/))[1]!;
  record('the server starts: its banner', 'server');

  type('agent', 'peerway-agent --version');
  await waitIn('agent', /^\d+\.\d+\.\d+$/m);
  type('agent', `peerway-agent init --server http://localhost:${PORT} --name home-pc`);
  await waitIn('agent', /configured for/);
  type('agent', `peerway-agent expose hello ${APP_PORT} --public`);
  await waitIn('agent', /Service hello/);
  type('agent', 'peerway-agent run');
  const claimUrl = (await waitIn('agent', /(http:\/\/localhost:\d+\/c\/\S+)/))[1]!;
  record('the agent: init, expose, run (unclaimed: it prints its claim link)', 'agent');

  const browser = await launchChromium();
  try {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    const page = await ctx.newPage();
    await page.goto(invite);
    await page.getByLabel('Email').fill('me@home.example');
    await page.getByLabel('Password').fill('correct horse battery');
    await shot(page, '1-sign-up');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/signup'));
    await page.goto(claimUrl);
    const dialog = page.getByRole('dialog', { name: 'Claim this node?' });
    await dialog.waitFor({ timeout: 20_000 });
    await shot(page, '2-claim');
    await dialog.getByRole('button', { name: /^Claim / }).click();
    await page
      .locator('#claim')
      .filter({ hasText: /is yours/ })
      .waitFor({ timeout: 20_000 });
    await waitIn('agent', /✓ http:\/\/hello\./);
    record('claimed: the agent hears it and serves', 'agent');
    await page.getByRole('link', { name: 'Go to my nodes' }).click();
    await page.locator('article[data-node] [data-status="online"]').waitFor({ timeout: 20_000 });
    await shot(page, '3-my-nodes');

    const app = await ctx.newPage();
    await app.goto(`http://hello.localhost:${PORT}/`);
    await app.frameLocator('#app').locator('h1').waitFor({ timeout: 30_000 });
    await shot(app, '4-service-open');

    tmux('send-keys', '-t', `${SESSION}:agent`, 'C-c');
    await app
      .getByText(/offline/i)
      .first()
      .waitFor({ timeout: 30_000 });
    await shot(app, '5-node-offline');
    record('Ctrl-C: the agent stops', 'agent');
    type('agent', 'peerway-agent run');
    await waitIn('agent', /✓ http:\/\/hello\.[\s\S]*✓ http:\/\/hello\./);
    await app.frameLocator('#app').locator('h1').waitFor({ timeout: 30_000 });
    await app.waitForTimeout(1500); // the card fades
    await shot(app, '6-back-online');
    record('run again: the open page works again without a reload', 'agent');
    type('agent', 'peerway-agent status');
    await waitIn('agent', /claimed|logged in/);
    record('status', 'agent');
  } finally {
    await browser.close();
  }
  writeFileSync(
    join(OUT, 'terminal.md'),
    `# A node owner's first hour: the terminal\n\nRecorded by \`npm run first-hour -w @peerway/bench\` (tmux panes captured as text) from the packed tarballs installed into an empty directory, on ${new Date().toISOString().slice(0, 10)}. Screenshots of the same run: \`1-sign-up.png\` … \`6-back-online.png\` beside this file.\n\n${transcript.join('\n')}`,
  );
  console.log(`wrote ${OUT}`);
} finally {
  spawnSync('tmux', ['kill-session', '-t', SESSION]);
  if (!process.env.FIRST_HOUR_KEEP) rmSync(work, { recursive: true, force: true });
  if (existsSync(join(work, 'install'))) console.log(`kept ${work}`);
}
