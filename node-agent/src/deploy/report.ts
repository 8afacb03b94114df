/**
 * The node's `resources` message: its capacity (runtime/resources.ts), the
 * owner's caps, labels and whether it takes deployments. Sent after every
 * `welcome`, and again when it changes (free disk moved by 256 MiB, the
 * container runtime came or went), checked at most once a minute.
 */
import type { Logger } from 'pino';
import type { NodeCapacity, NodeResources } from '@peerway/protocol';
import type { DeploySettings } from './settings';

/** How often the node's capacity is measured again, in ms. */
export const RESOURCES_CHECK_MS = 60_000;
/** Free disk that moved less than this many bytes since the last report is no change. */
export const DISK_FREE_STEP_BYTES = 256 * 1024 ** 2;

/** The report for a capacity and the owner's settings. */
export function nodeResources(capacity: NodeCapacity, s: DeploySettings): NodeResources {
  return {
    capacity,
    offer: { cpuCores: s.cpuCores, memoryBytes: s.memoryBytes },
    labels: { ...s.labels },
    deployments: s.enabled,
  };
}

/** Whether two reports differ by more than noise (free disk within DISK_FREE_STEP_BYTES is the same). */
export function reportChanged(a: NodeResources, b: NodeResources): boolean {
  const disk = Math.abs(a.capacity.diskFreeBytes - b.capacity.diskFreeBytes);
  const rest = (r: NodeResources) =>
    JSON.stringify({ ...r, capacity: { ...r.capacity, diskFreeBytes: 0 } });
  return disk >= DISK_FREE_STEP_BYTES || rest(a) !== rest(b);
}

export interface ResourceReporterOptions {
  /** Measures the node now. */
  measure: () => Promise<NodeResources>;
  /** Sends a report to the server (dropped while disconnected). */
  send: (r: NodeResources) => void;
  checkMs?: number;
  log?: Logger;
}

/** Sends the report after each welcome and when it changes. */
export class ResourceReporter {
  private last: NodeResources | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy: Promise<void> = Promise.resolve();

  constructor(private readonly o: ResourceReporterOptions) {}

  /** The server welcomed the node: it gets a fresh report now. */
  connected(): Promise<void> {
    return this.check(true);
  }

  /** Starts the periodic check. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(false), this.o.checkMs ?? RESOURCES_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The report sent last. */
  get current(): NodeResources | null {
    return this.last;
  }

  private check(always: boolean): Promise<void> {
    this.busy = this.busy.then(async () => {
      let r: NodeResources;
      try {
        r = await this.o.measure();
      } catch (err) {
        this.o.log?.warn({ err: (err as Error).message }, 'could not measure the node');
        return;
      }
      if (!always && this.last && !reportChanged(this.last, r)) return;
      this.last = r;
      this.o.send(r);
    });
    return this.busy;
  }
}
