/**
 * What a personal access token resolved to, kept for a second. A script or
 * a worker's submitter sends the same token hundreds of times a second; on
 * the Redis store each lookup is five commands (the hash's ID, the token,
 * its last use, the user). A revoked token or a removed user stops working
 * at once on the instance that revoked it (`forget`), and within `ttlMs`
 * everywhere else (another instance, the `peerway-server` command line).
 * The last-used time is written at most once per `touchEveryMs` per token:
 * it is shown to the minute.
 */
import type { User } from '../store/store';

export const TOKEN_CACHE_MS = 1000;
export const TOKEN_TOUCH_EVERY_MS = 60_000;
/** Entries kept at most; the oldest go first. */
const MAX_ENTRIES = 10_000;

interface Entry {
  tokenId: string;
  user: User;
  expiresAt: number | null;
  until: number;
}

export class TokenCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly now: () => number,
    private readonly ttlMs = TOKEN_CACHE_MS,
    private readonly touchEveryMs = TOKEN_TOUCH_EVERY_MS,
  ) {}

  /** The user this token hash stood for a moment ago, if it still may (not expired since). */
  get(hash: string): User | undefined {
    const e = this.byHash.get(hash);
    if (!e) return undefined;
    const now = this.now();
    if (e.until <= now || (e.expiresAt !== null && e.expiresAt <= now)) {
      this.byHash.delete(hash);
      return undefined;
    }
    return e.user;
  }

  put(hash: string, tokenId: string, user: User, expiresAt: number | null): void {
    if (this.ttlMs <= 0) return;
    if (this.byHash.size >= MAX_ENTRIES) this.byHash.delete(this.byHash.keys().next().value!);
    this.byHash.set(hash, { tokenId, user, expiresAt, until: this.now() + this.ttlMs });
  }

  /** Whether the token's last use is due to be written (and notes that it is being written). */
  touchDue(tokenId: string): boolean {
    const now = this.now();
    const last = this.touched.get(tokenId);
    if (last !== undefined && now - last < this.touchEveryMs) return false;
    if (this.touched.size >= MAX_ENTRIES) this.touched.delete(this.touched.keys().next().value!);
    this.touched.delete(tokenId);
    this.touched.set(tokenId, now);
    return true;
  }

  /** Drops what is known of a token (revoked) or of every token of a user (removed, changed). */
  forget(match: { tokenId?: string; userId?: string }): void {
    for (const [hash, e] of this.byHash)
      if (e.tokenId === match.tokenId || e.user.id === match.userId) this.byHash.delete(hash);
  }
}
