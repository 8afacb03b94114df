#!/usr/bin/env node
// `npm start`: builds the web client if needed and starts peerway-server with
// its embedded default (SQLite in ./.peerway-data, port 8080, services at
// http://<service>.localhost:8080/). `npm run demo` also starts a sample app
// and an agent exposing it, so a newcomer sees a service open in the browser.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

const root = resolve(import.meta.dirname, '..');
const demo = process.argv.includes('--demo');
const args = process.argv.slice(2).filter((a) => a !== '--demo');
const port = process.env.PORT ?? '8080';
const dataDir = process.env.PEERWAY_DATA_DIR ?? join(root, '.peerway-data');
const serverBin = join(root, 'signaling-server/bin/peerway-server.js');
const agentBin = join(root, 'node-agent/bin/peerway-agent.js');

if (!existsSync(join(root, 'web-client/dist/shell.js'))) {
  console.log('Building the web client (first start)…');
  execFileSync('npm', ['run', 'build', '-w', '@peerway/web-client'], {
    cwd: root,
    stdio: 'inherit',
  });
}

const children = [];
const stopAll = () => {
  for (const c of children) c.kill('SIGTERM');
  process.exit(0);
};
process.on('SIGINT', stopAll);
process.on('SIGTERM', stopAll);

const server = spawn(
  process.execPath,
  [serverBin, '--port', port, '--data-dir', dataDir, ...args],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
children.push(server);
server.on('exit', (code) => process.exit(code ?? 1));
let shown = false;
server.stdout.on('data', (d) => {
  process.stdout.write(d);
  if (!shown && /listening on/.test(d.toString())) {
    shown = true;
    setTimeout(() => (demo ? startDemo() : guide()), 200);
  }
});

function guide() {
  console.log(`
To expose your first service:
  1. Open the sign-up link above (first start) or http://localhost:${port}/signin, and sign in.
  2. On the machine with the service, install the agent (Node.js 20.11 or newer):
       npm install -g @peerway/node-agent
     (in this clone, \`npx peerway-agent\` runs the same agent from the sources)
  3. The dashboard's "Add a node" page shows the commands with a fresh token, e.g.:
       peerway-agent run --server http://localhost:${port} --token <token> --service myapp=http://127.0.0.1:3000
  4. Open http://myapp.localhost:${port}/
Or run \`npm run demo\` to see it with a sample app on this machine.`);
}

function startDemo() {
  const email = 'demo@peerway.localhost';
  const password = randomBytes(9).toString('base64url');
  try {
    execFileSync(
      process.execPath,
      [
        serverBin,
        'users',
        'create',
        '--email',
        email,
        '--password',
        password,
        '--data-dir',
        dataDir,
      ],
      { stdio: 'ignore' },
    );
    console.log(`Demo account: ${email} / ${password}`);
  } catch {
    // made on an earlier run
  }
  const token = execFileSync(process.execPath, [
    serverBin,
    'tokens',
    'create',
    '--email',
    email,
    '--name',
    'demo',
    '--data-dir',
    dataDir,
  ])
    .toString()
    .trim();
  let visits = 0;
  const app = http.createServer((req, res) => {
    if (req.url === '/count') return void res.end(String(++visits));
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><html><head><title>Hello from Peerway</title><style>body{font-family:system-ui;max-width:40rem;margin:3rem auto;padding:0 1rem}</style></head>
<body><h1>Hello through Peerway 👋</h1><p>This page is served by a small app on this machine, reached peer to peer over WebRTC: the server only introduced your browser and the agent.</p>
<p>Requests so far: <b id="n">…</b> <button onclick="load()">Count again</button></p><script>async function load(){document.getElementById('n').textContent=await (await fetch('/count')).text()}load()</script></body></html>`);
  });
  app.listen(0, '127.0.0.1', () => {
    const home = join(dataDir, 'demo-agent');
    mkdirSync(home, { recursive: true });
    const target = `127.0.0.1:${app.address().port}`;
    const agent = spawn(
      process.execPath,
      [
        agentBin,
        'run',
        '--server',
        `http://localhost:${port}`,
        '--token',
        token,
        '--name',
        'demo-node',
        '--service',
        `hello=${target},public`,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, PEERWAY_HOME: home, PEERWAY_LOG_LEVEL: 'warn' },
      },
    );
    children.push(agent);
    agent.stdout.on('data', (d) => {
      process.stdout.write(`[agent] ${d}`);
      if (/✓ http:\/\/hello\./.test(d.toString()))
        console.log(`\nDemo ready: open http://hello.localhost:${port}/ in a browser.\n`);
    });
  });
}
