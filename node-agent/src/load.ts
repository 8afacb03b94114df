/** Load figures the agent reports in heartbeats. */
import type { NodeLoad } from '@peerway/protocol';

export class LoadMeter {
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private lastTx = 0;
  private lastRx = 0;

  /** Samples since the previous call. */
  sample(sessions: number, txTotal: number, rxTotal: number): NodeLoad {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const secs = Math.max(0.001, (now - this.lastAt) / 1000);
    const out: NodeLoad = {
      sessions,
      cpu: Math.min(1024, (cpu.user + cpu.system) / 1e6 / secs),
      rssBytes: process.memoryUsage.rss(),
      txBytesPerSec: Math.max(0, (txTotal - this.lastTx) / secs),
      rxBytesPerSec: Math.max(0, (rxTotal - this.lastRx) / secs),
    };
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    this.lastTx = txTotal;
    this.lastRx = rxTotal;
    return out;
  }
}
