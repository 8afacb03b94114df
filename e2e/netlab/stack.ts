/**
 * A whole Peerway deployment inside the NAT lab: coturn and the signaling
 * server on the internet segment, an agent and its upstream app behind one
 * home router, Chromium behind another.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { CHROMIUM_PATH, launchChromium } from '../support/chromium';
import { startTurn, type TurnProcess } from '../../infra/turn/turn-process';
import { Lab, PUBLIC_HOST_IP, type Home, type NatKind } from './lab';
import type { ChildProcess } from 'node:child_process';

const ROOT = resolve(import.meta.dirname, '../..');
const SERVER_BIN = join(ROOT, 'signaling-server/bin/peerway-server.js');
const AGENT_BIN = join(ROOT, 'node-agent/bin/peerway-agent.js');
export const LAB_DOMAIN = 'lab.test';
const PORT = 8080;
const TURN_PORT = 3478;

function waitFor(p: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  let out = '';
  return new Promise((res, rej) => {
    const on = (d: Buffer) => {
      out += d.toString();
      const m = re.exec(out);
      if (m) (clearTimeout(t), res(m));
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    const t = setTimeout(
      () => rej(new Error(`timed out waiting for ${re}:\n${out.slice(-2000)}`)),
      timeoutMs,
    );
  });
}

export interface LabStackOptions {
  client: { nat: NatKind; blockUdp?: boolean };
  node: { nat: NatKind };
  /** Start coturn with this secret while the server gets another one. */
  wrongTurnSecret?: boolean;
  /** Do not start coturn at all. */
  noTurn?: boolean;
  /** Give the peers only STUN (coturn still answers it), no TURN. */
  stunOnly?: boolean;
}

export class LabStack {
  readonly lab = new Lab();
  readonly dir = mkdtempSync(join(tmpdir(), 'pw-labstack-'));
  client!: Home;
  node!: Home;
  turn: TurnProcess | null = null;
  adminToken = '';
  browser: Browser | null = null;

  async start(o: LabStackOptions): Promise<void> {
    this.client = this.lab.addHome('client', o.client);
    this.node = this.lab.addHome('node', o.node);
    const secret = randomBytes(24).toString('base64url');
    if (!o.noTurn) {
      this.turn = await startTurn(
        {
          secrets: [o.wrongTurnSecret ? randomBytes(24).toString('base64url') : secret],
          listeningIps: [PUBLIC_HOST_IP],
          relayIps: [PUBLIC_HOST_IP],
          port: TURN_PORT,
          minPort: 49152,
          maxPort: 49252,
          // peers are the routers' public addresses, in a documentation range the deny list covers
          allowedPeerRanges: ['203.0.113.0-203.0.113.255'],
        },
        { spawnIn: (cmd, args) => this.lab.spawn(this.lab.internetNs, cmd, args) },
      );
    }
    const dataDir = join(this.dir, 'data');
    const email = `admin-${randomBytes(3).toString('hex')}@test.invalid`;
    execFileSync(process.execPath, [
      SERVER_BIN,
      'users',
      'create',
      '--email',
      email,
      '--password',
      randomBytes(12).toString('hex'),
      '--admin',
      '--data-dir',
      dataDir,
    ]);
    this.adminToken = execFileSync(
      process.execPath,
      [SERVER_BIN, 'tokens', 'create', '--email', email, '--data-dir', dataDir],
      { encoding: 'utf8' },
    ).trim();
    const server = this.lab.spawn(
      this.lab.internetNs,
      process.execPath,
      [
        SERVER_BIN,
        '--host',
        PUBLIC_HOST_IP,
        '--port',
        String(PORT),
        '--data-dir',
        dataDir,
        '--public-url',
        `http://${LAB_DOMAIN}:${PORT}`,
        '--base-domain',
        LAB_DOMAIN,
        ...(o.stunOnly
          ? []
          : [
              '--turn-secret',
              secret,
              '--turn-url',
              `turn:${PUBLIC_HOST_IP}:${TURN_PORT}`,
              '--turn-url',
              `turn:${PUBLIC_HOST_IP}:${TURN_PORT}?transport=tcp`,
            ]),
        '--stun-url',
        `stun:${PUBLIC_HOST_IP}:${TURN_PORT}`,
      ],
      { env: { ...process.env, PEERWAY_LOG_LEVEL: 'warn' } },
    );
    await waitFor(server, /listening on/);
    // the upstream app and the agent, both at home behind the node's router
    const app = this.lab.spawn(
      this.node.hostNs,
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        "import('./e2e/fixtures/chat.ts').then((m) => m.startChatApp()).then((a) => console.log('port ' + a.port))",
      ],
      { cwd: ROOT },
    );
    const port = (await waitFor(app, /port (\d+)/))[1];
    const home = join(this.dir, 'agent');
    const agent = this.lab.spawn(
      this.node.hostNs,
      process.execPath,
      [
        AGENT_BIN,
        'run',
        '--server',
        `http://${PUBLIC_HOST_IP}:${PORT}`,
        '--token',
        this.adminToken,
        '--service',
        `chat=127.0.0.1:${port},public`,
      ],
      {
        env: {
          ...process.env,
          PEERWAY_HOME: home,
          PEERWAY_LOG_LEVEL: process.env.PEERWAY_LAB_DEBUG ? 'debug' : 'warn',
        },
      },
    );
    // PEERWAY_LAB_DEBUG=1: the agent's log on this test's stderr
    if (process.env.PEERWAY_LAB_DEBUG)
      for (const s of [agent.stdout, agent.stderr]) s?.on('data', (d) => process.stderr.write(d));
    await waitFor(agent, /✓ http:\/\/chat\./);
  }

  /** Chromium running inside the client's namespace. */
  async launchBrowser(): Promise<Browser> {
    const wrapper = join(this.dir, 'chromium-in-ns.sh');
    writeFileSync(
      wrapper,
      `#!/bin/sh\nexec ip netns exec ${this.client.hostNs} ${CHROMIUM_PATH} "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
    this.browser = await launchChromium(
      [
        `--host-resolver-rules=MAP *.${LAB_DOMAIN} ${PUBLIC_HOST_IP}, MAP ${LAB_DOMAIN} ${PUBLIC_HOST_IP}`,
        `--unsafely-treat-insecure-origin-as-secure=http://chat.${LAB_DOMAIN}:${PORT}`,
      ],
      wrapper,
    );
    return this.browser;
  }

  serviceUrl(service: string): string {
    return `http://${service}.${LAB_DOMAIN}:${PORT}/`;
  }

  /** The server's admin view of signaling, read from inside the internet segment. */
  signalingStats(): {
    recent: {
      openedAt: number;
      askedEngine: string | null;
      client: Record<string, string> | null;
      agent: Record<string, string> | null;
      failure: string | null;
    }[];
  } {
    const script = `fetch('http://${PUBLIC_HOST_IP}:${PORT}/api/admin/signaling',{headers:{authorization:'Bearer ${this.adminToken}'}}).then(r=>r.text()).then(t=>console.log(t))`;
    return JSON.parse(this.lab.inNs(this.lab.internetNs, [process.execPath, '-e', script]));
  }

  async stop(): Promise<void> {
    await this.browser?.close().catch(() => {});
    await this.turn?.stop().catch(() => {});
    await this.lab.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
