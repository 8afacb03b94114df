/**
 * Presence: a node is online while its connection is open and heart-beating.
 * Without a heartbeat for `timeoutMs` it is offline and its connection is
 * dropped, even if TCP still looks open. `lastSeen` is written to the store,
 * at most once per `persistEveryMs` per node.
 */
import type { Clock } from './clock';

export interface PresenceEntry {
  lastHeartbeat: number;
  lastPersisted: number;
  onTimeout: () => void;
}

export class Presence {
  private readonly entries = new Map<string, PresenceEntry>();
  private readonly lastSeenMap = new Map<string, number>();
  private timer: unknown = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly clock: Clock,
    private readonly persist: (nodeId: string, at: number) => void,
    private readonly persistEveryMs = 10_000,
  ) {}

  start(): void {
    this.timer = this.clock.setInterval(
      () => this.sweep(),
      Math.max(50, Math.floor(this.timeoutMs / 4)),
    );
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearInterval(this.timer);
    this.timer = null;
  }

  /** A node's connection authenticated. */
  connected(nodeId: string, onTimeout: () => void): void {
    const now = this.clock.now();
    this.entries.set(nodeId, { lastHeartbeat: now, lastPersisted: now, onTimeout });
    this.lastSeenMap.set(nodeId, now);
    this.persist(nodeId, now);
  }

  heartbeat(nodeId: string): void {
    const e = this.entries.get(nodeId);
    if (!e) return;
    const now = this.clock.now();
    e.lastHeartbeat = now;
    this.lastSeenMap.set(nodeId, now);
    if (now - e.lastPersisted >= this.persistEveryMs) {
      e.lastPersisted = now;
      this.persist(nodeId, now);
    }
  }

  /** The connection ended (or was replaced: pass the handler that owned it). */
  disconnected(nodeId: string, onTimeout?: () => void): void {
    const e = this.entries.get(nodeId);
    if (!e || (onTimeout && e.onTimeout !== onTimeout)) return;
    this.entries.delete(nodeId);
    this.persist(nodeId, e.lastHeartbeat);
  }

  isOnline(nodeId: string): boolean {
    const e = this.entries.get(nodeId);
    return e !== undefined && this.clock.now() - e.lastHeartbeat <= this.timeoutMs;
  }

  lastSeen(nodeId: string): number | undefined {
    return this.lastSeenMap.get(nodeId);
  }

  get onlineCount(): number {
    return this.entries.size;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [id, e] of this.entries) {
      if (now - e.lastHeartbeat > this.timeoutMs) {
        this.entries.delete(id);
        this.persist(id, e.lastHeartbeat);
        e.onTimeout();
      }
    }
  }
}
