/**
 * Live sessions (one browser/Node client ⇄ one agent) and a bounded history
 * of finished ones for the admin view: setup time, how each end connected,
 * and why a session failed.
 */
import type { ConnectionStats, ErrorCode } from '@peerway/protocol';

export interface SessionRecord {
  id: string;
  service: string;
  nodeId: string;
  shortId: string;
  clientKey: object;
  /** Who the client's token names (a user ID, or "anonymous"): re-checked when access changes. */
  subject?: string;
  /** The instance holding the agent's connection, when it is not this one. */
  agentInstance?: string;
  /** The engine the client asked the node to answer with (none: the node's default). */
  askedEngine?: string;
  openedAt: number;
  answeredAt?: number;
  closedAt?: number;
  failure?: ErrorCode | string;
  agentStats?: ConnectionStats;
  clientStats?: ConnectionStats;
}

/** How many finished sessions the admin view keeps. */
const HISTORY_SIZE = 1000;

export class Sessions {
  private readonly live = new Map<string, SessionRecord>();
  private readonly history: SessionRecord[] = [];

  add(s: SessionRecord): void {
    this.live.set(s.id, s);
  }

  get(id: string): SessionRecord | undefined {
    return this.live.get(id);
  }

  /** Ends a session and moves it to the history. Returns it, or undefined if it was not live. */
  end(id: string, at: number, failure?: string): SessionRecord | undefined {
    const s = this.live.get(id);
    if (!s) return undefined;
    this.live.delete(id);
    s.closedAt = at;
    if (failure && !s.failure) s.failure = failure;
    this.history.push(s);
    if (this.history.length > HISTORY_SIZE) this.history.shift();
    return s;
  }

  /** Live sessions of one node or one client. */
  of(pred: (s: SessionRecord) => boolean): SessionRecord[] {
    return [...this.live.values()].filter(pred);
  }

  get liveCount(): number {
    return this.live.size;
  }

  /** Recent sessions, live first, newest first. */
  recent(limit = 100): SessionRecord[] {
    return [...this.live.values(), ...[...this.history].reverse()].slice(0, limit);
  }
}
