/**
 * A stand-in Peerway server for the worker's tests: a real HTTP server on
 * 127.0.0.1:0 with a real WebSocket at /ws/agent that speaks the agent
 * protocol (challenge, proof checked, welcome), and the lease-token job
 * endpoints (`/api/agent/jobs/:id/input|output|files/:name`) that record
 * what the agent uploads. The test plays the broker: it sends leases and
 * cancels and waits for the agent's messages as they arrive.
 */
import http from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { exportJWK, generateKeyPair } from 'jose';
import {
  encodeMessage,
  parseAgentToServer,
  type AgentToServer,
  type ServerToAgent,
} from '@peerway/protocol';
import { verifyChallenge } from '@peerway/protocol/node';

export interface Upload {
  id: string;
  what: 'output' | `files/${string}`;
  token: string;
  contentType: string;
  body: Buffer;
}

export class FakeJobServer {
  readonly inbox: AgentToServer[] = [];
  readonly uploads: Upload[] = [];
  /** Inputs served at GET /api/agent/jobs/:id/input, by job id, with the token they need. */
  readonly inputs = new Map<string, { token: string; input: unknown }>();
  /** Answer uploads with this status instead of 204 (to test failures). */
  uploadStatus = 204;
  url = '';
  connections = 0;
  private readonly http = http.createServer((req, res) => this.onHttp(req, res));
  private readonly wss = new WebSocketServer({ server: this.http, path: '/ws/agent' });
  private sock: WebSocket | null = null;
  private waiters: (() => void)[] = [];

  async start(): Promise<void> {
    const kp = await generateKeyPair('EdDSA', { extractable: true });
    const jwk = (await exportJWK(kp.publicKey)) as Record<string, unknown>;
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.http.address() as { port: number }).port}`;
    this.wss.on('connection', (ws) => {
      this.connections++;
      const nonce = 'n'.repeat(43);
      ws.send(encodeMessage({ type: 'challenge', nonce, serverUrl: this.url }));
      ws.on('message', (raw) => {
        const r = parseAgentToServer(raw as Buffer);
        if (!r.ok) throw new Error(`the agent sent a bad message: ${r.error.message}`);
        if (r.value.type === 'auth') {
          verifyChallenge({ ...r.value, serverUrl: this.url, nonce, now: Date.now() });
          this.sock = ws;
          ws.send(
            encodeMessage({
              type: 'welcome',
              nodeId: r.value.nodeId,
              shortId: 'abc123',
              claimed: true,
              serverKey: jwk,
              tokenIssuer: this.url,
              heartbeatIntervalMs: 60_000,
              services: [],
            }),
          );
        }
        this.inbox.push(r.value);
        for (const w of this.waiters.splice(0)) w();
      });
    });
  }

  send(m: ServerToAgent): void {
    if (!this.sock) throw new Error('no agent connected');
    this.sock.send(encodeMessage(m));
  }

  /** Cuts the agent's socket (as a server restart or a network drop would). */
  drop(): void {
    this.sock?.terminate();
    this.sock = null;
  }

  /** The first message after `from` (an inbox index) that `match` accepts; waits for it. */
  async next<T extends AgentToServer['type']>(
    type: T,
    match: (m: Extract<AgentToServer, { type: T }>) => boolean = () => true,
    opts: { from?: number; timeoutMs?: number } = {},
  ): Promise<Extract<AgentToServer, { type: T }>> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      const found = this.inbox
        .slice(opts.from ?? 0)
        .find(
          (m): m is Extract<AgentToServer, { type: T }> => m.type === type && match(m as never),
        );
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no ${type} from the agent; it sent: ${this.inbox.map((m) => m.type).join(', ')}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Messages of `type` so far. */
  all<T extends AgentToServer['type']>(type: T): Extract<AgentToServer, { type: T }>[] {
    return this.inbox.filter((m): m is Extract<AgentToServer, { type: T }> => m.type === type);
  }

  private onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const m = /^\/api\/agent\/jobs\/([^/]+)\/(input|output|files\/.+)$/.exec(req.url ?? '');
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const id = decodeURIComponent(m[1]!);
    if (m[2] === 'input' && req.method === 'GET') {
      const entry = this.inputs.get(id);
      if (!entry || entry.token !== token) {
        res.writeHead(401).end('bad lease token');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(entry.input));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.uploads.push({
        id,
        what: m[2] as Upload['what'],
        token,
        contentType: String(req.headers['content-type'] ?? ''),
        body: Buffer.concat(chunks),
      });
      res.writeHead(this.uploadStatus).end();
    });
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise((r) => this.wss.close(r));
    await new Promise((r) => this.http.close(r));
  }
}
