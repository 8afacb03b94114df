/**
 * Liveness of a client connection (`/ws/client`), the counterpart of the
 * agent's auth timeout and heartbeat: a socket costs the server memory and a
 * file descriptor, so one that never asks for anything, or that has nothing
 * going on any more, is closed.
 *
 * - No valid message within `clientFirstMessageTimeoutMs` of the upgrade:
 *   closed (4002). A shell sends `open` as soon as its socket opens.
 * - No valid message for `clientIdleTimeoutMs` and no live session: closed
 *   (4012). While a session of the connection is live the socket is left
 *   alone however quiet it is: the shell keeps it open for the life of its
 *   tunnel without sending anything (it hears `node-offline`, and the
 *   server's `session-error` when the right to the session is taken back,
 *   over it). A client that wants to keep an idle socket sends `ping`.
 */
import type { Clock } from './clock';

export interface ClientTimeouts {
  /** A client that sends no valid message this long after connecting is closed. */
  clientFirstMessageTimeoutMs: number;
  /** A client with no live session and no valid message for this long is closed. */
  clientIdleTimeoutMs: number;
}

export const DEFAULT_CLIENT_TIMEOUTS: ClientTimeouts = {
  clientFirstMessageTimeoutMs: 10_000,
  clientIdleTimeoutMs: 5 * 60_000,
};

/** What the watcher needs of the connection. */
export interface WatchedClient {
  /** When the last valid message arrived (null: none yet). */
  readonly lastMessageAt: number | null;
  readonly closed: boolean;
  close(code: number, reason: string): void;
}

/** Close codes this watcher uses (kept in step with CloseCode in ./peer.ts). */
export const CLIENT_TIMEOUT_CLOSE = { FIRST_MESSAGE: 4002, IDLE: 4012 } as const;

/**
 * Watches one client until it closes; returns a function that stops the
 * watch (call it on close, so no timer outlives the socket).
 */
export function watchClient(
  client: WatchedClient,
  hasLiveSession: () => boolean,
  t: ClientTimeouts,
  clock: Pick<Clock, 'now' | 'setTimeout' | 'clearTimeout'>,
): () => void {
  const connectedAt = clock.now();
  let timer: unknown = clock.setTimeout(() => {
    if (client.closed) return;
    if (client.lastMessageAt === null)
      return client.close(
        CLIENT_TIMEOUT_CLOSE.FIRST_MESSAGE,
        `no request within ${Math.round(t.clientFirstMessageTimeoutMs / 1000)} s`,
      );
    idleCheck();
  }, t.clientFirstMessageTimeoutMs);

  const idleCheck = (): void => {
    if (client.closed) return;
    const last = Math.max(client.lastMessageAt ?? connectedAt, connectedAt);
    const quietMs = clock.now() - last;
    if (quietMs >= t.clientIdleTimeoutMs) {
      if (!hasLiveSession())
        return client.close(
          CLIENT_TIMEOUT_CLOSE.IDLE,
          `idle: no session and no message for ${Math.round(t.clientIdleTimeoutMs / 1000)} s`,
        );
      // A live session keeps the socket: look again a period later.
      timer = clock.setTimeout(idleCheck, t.clientIdleTimeoutMs);
      return;
    }
    timer = clock.setTimeout(idleCheck, t.clientIdleTimeoutMs - quietMs);
  };

  return () => clock.clearTimeout(timer);
}
