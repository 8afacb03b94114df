/**
 * A TCP load balancer for tests: one loopback port in front of several
 * server instances, as a real deployment puts them behind one URL. It sends
 * each new connection to `prefer` while that backend accepts, else to the
 * next one that does (no stickiness: Peerway does not need it). Written by
 * hand because it is twenty lines and the test must steer it.
 */
import net from 'node:net';

export class Balancer {
  readonly backends: number[] = [];
  /** Index into `backends` new connections go to first. */
  prefer = 0;
  port = 0;
  private readonly server = net.createServer((client) => this.route(client, 0));
  private readonly sockets = new Set<net.Socket>();

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private route(client: net.Socket, tried: number): void {
    if (tried >= this.backends.length) return void client.destroy();
    const port = this.backends[(this.prefer + tried) % this.backends.length]!;
    const up = net.connect(port, '127.0.0.1');
    this.track(client);
    this.track(up);
    let connected = false;
    up.once('connect', () => {
      connected = true;
      client.pipe(up);
      up.pipe(client);
    });
    up.on('error', () => {
      if (!connected) {
        this.sockets.delete(up);
        this.route(client, tried + 1);
      } else client.destroy();
    });
    up.on('close', () => connected && client.destroy());
    client.on('error', () => up.destroy());
    client.on('close', () => up.destroy());
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
