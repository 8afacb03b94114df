/**
 * The server connection in words, for the owner watching `peerway-agent
 * run`: one line when its state changes (cannot reach, lost, back), never a
 * line per retry. The JSON log on stderr keeps every attempt.
 */
import { describeConnectError } from './upstream-health';

/** What happened to the server connection. */
export type ConnectionEvent =
  | { state: 'connected' }
  | {
      state: 'down';
      /** Why, in words ("connection refused: nothing listens there"). */
      reason: string;
      /** The attempt had been welcomed: a connection was lost, not refused. */
      wasConnected: boolean;
    };

/** Words for why a WebSocket to the server failed or closed. */
export function describeSocketFailure(
  err: (Error & { code?: string }) | null,
  closeCode: number,
  closeReason: string,
): string {
  if (err) {
    const status = /Unexpected server response: (\d+)/.exec(err.message)?.[1];
    if (status)
      return `the server answered HTTP ${status} at /ws/agent: is this the URL of a Peerway server?`;
    if (/handshake has timed out/i.test(err.message)) return 'timed out';
    if (err.code === 'EPROTO' || /wrong version number/i.test(err.message))
      return 'the TLS handshake failed: is the server http:// rather than https://?';
    if (err.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(err.code))
      return `its TLS certificate is not trusted (${err.code})`;
    if (err.code) return describeConnectError(err.code, err.message);
  }
  switch (closeCode) {
    case 1000:
      return `the server closed the connection${closeReason ? ` (${closeReason})` : ''}`;
    case 1001:
      return 'the server is going away (restarting?)';
    case 1006:
      return 'the connection dropped';
    case 4001:
      return `the server refused this node's proof${closeReason ? `: ${closeReason}` : ''}`;
    default:
      return `the server closed the connection (${closeCode}${closeReason ? ` ${closeReason}` : ''})`;
  }
}

/**
 * Turns connection events into lines, one per change: "Cannot reach …"
 * once however many attempts fail for the same reason, "Lost the
 * connection …" when a welcomed one drops, and whether the next welcome
 * is a reconnection (`connected()` tells how long it was away).
 */
export class ConnectionReporter {
  private lastDown: string | null = null;
  private downSince: number | null = null;
  private everConnected = false;

  constructor(
    private readonly server: string,
    private readonly print: (line: string) => void,
    /** The longest wait between two attempts, in s. */
    private readonly retryMaxS: number,
    private readonly now: () => number = Date.now,
  ) {}

  on(e: ConnectionEvent): void {
    if (e.state === 'connected') return;
    const retry = `retrying every ${this.retryMaxS} s at most until it answers`;
    if (e.wasConnected) {
      this.lastDown = e.reason;
      this.downSince = this.now();
      this.print(
        `Lost the connection to ${this.server}: ${e.reason}; reconnecting, ${retry}. Open sessions go on.`,
      );
      return;
    }
    this.downSince ??= this.now();
    if (this.lastDown === e.reason) return;
    this.lastDown = e.reason;
    this.print(`Cannot reach ${this.server}: ${e.reason}; ${retry}.`);
  }

  /**
   * A welcome: null the first time, else how long the server was away, in
   * s (the caller says "Reconnected").
   */
  connected(): number | null {
    const first = !this.everConnected;
    this.everConnected = true;
    const since = this.downSince;
    this.lastDown = null;
    this.downSince = null;
    if (first) return null;
    return since === null ? 0 : Math.round((this.now() - since) / 1000);
  }
}
