/**
 * Several Peerway server instances sharing one real redis-server, behind a
 * test load balancer on one loopback port: the URL every agent and browser
 * uses. Extends Stack, so users, agents and Chromium work as usual.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { Balancer } from './balancer';
import { Proc, Stack } from './stack';

export interface Instance {
  proc: Proc;
  port: number;
  /** Direct URL of this instance (bypassing the balancer). */
  url: string;
}

export class ClusterStack extends Stack {
  readonly balancer = new Balancer();
  readonly instances: Instance[] = [];
  redis!: Proc;
  private redisPort = 0;

  private get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}/0`;
  }

  protected override storeArgs(): string[] {
    return ['--redis-url', this.redisUrl];
  }

  /** Starts Redis (AOF on), the balancer and `n` instances. */
  override async start(extraArgs: string[] = [], n = 2): Promise<void> {
    const dir = join(this.dir, 'redis');
    mkdirSync(dir, { recursive: true });
    this.redisPort = 21000 + Math.floor(Math.random() * 20000);
    this.redis = new Proc(
      spawn(
        'redis-server',
        [
          '--port',
          String(this.redisPort),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--save',
          '',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    this.onStop(() => this.redis.stop());
    await this.redis.waitFor(/Ready to accept connections/);
    await this.balancer.listen();
    this.onStop(() => this.balancer.close());
    this.port = this.balancer.port;
    this.url = `http://localhost:${this.port}`;
    for (let i = 0; i < n; i++) await this.startInstance(extraArgs);
  }

  /** One more instance; the balancer learns it. */
  async startInstance(extraArgs: string[] = []): Promise<Instance> {
    const proc = this.spawn(
      this.serverBin,
      [
        '--port',
        '0',
        '--redis-url',
        this.redisUrl,
        '--public-url',
        this.url,
        '--heartbeat-interval-ms',
        '1000',
        ...extraArgs,
      ],
      {},
    );
    const m = await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    const port = Number(m[1]);
    const inst = { proc, port, url: `http://127.0.0.1:${port}` };
    this.instances.push(inst);
    this.balancer.backends.push(port);
    return inst;
  }

  /** New connections go to instance `i` first (to the next live one if it is down). */
  route(i: number): void {
    this.balancer.prefer = i;
  }
}

/** GET JSON from one instance with a bearer token. */
export async function getJson(base: string, path: string, token: string): Promise<any> {
  const r = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}
