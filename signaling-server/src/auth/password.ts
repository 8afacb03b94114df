/** Password hashing with scrypt (node:crypto): salted, parameters kept in the hash string. */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { PeerwayError } from '@peerway/protocol';

const scrypt = (pw: string, salt: Buffer, len: number, opts: ScryptOptions) =>
  new Promise<Buffer>((res, rej) => scryptCb(pw, salt, len, opts, (e, k) => (e ? rej(e) : res(k))));

/** scrypt cost (N), block size (r), parallelism (p): 16 MiB of memory per hash. */
const N = 16384;
const R = 8;
const P = 1;
const KEY_BYTES = 32;
/** Room for stronger parameters in hashes made later (128·N·r bytes must fit). */
const MAX_MEMORY_BYTES = 256 * 1024 * 1024;

/** Returns `scrypt$N$r$p$salt$hash` (base64url parts). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_BYTES, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/**
 * Checks a password against a stored hash in constant time, with the
 * parameters the hash was made with. A malformed hash never matches.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash, extra] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !hash || extra !== undefined) return false;
  const params = { N: Number(n), r: Number(r), p: Number(p), maxmem: MAX_MEMORY_BYTES };
  if (![params.N, params.r, params.p].every((x) => Number.isSafeInteger(x) && x > 0)) return false;
  const expected = Buffer.from(hash, 'base64url');
  if (expected.length < 16) return false;
  try {
    const key = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, params);
    return timingSafeEqual(key, expected);
  } catch {
    return false; // parameters scrypt refuses (N not a power of two, too much memory)
  }
}

/** How many password hashes run at once, and how many may wait for a turn. */
export interface HashLimits {
  /**
   * scrypt runs on libuv's thread pool (4 threads by default), which file
   * reads and DNS lookups share: 2 at once leaves them room.
   */
  concurrentHashes: number;
  /** Beyond this many waiting, a sign-in is refused at once (429) instead of queued. */
  maxQueuedHashes: number;
}

export const DEFAULT_HASH_LIMITS: HashLimits = { concurrentHashes: 2, maxQueuedHashes: 32 };

/**
 * A bound on concurrent password hashing (a semaphore with a bounded
 * queue), so a burst of sign-ins (each 16 MiB and tens of ms of scrypt)
 * cannot starve the server's other work or its memory.
 */
export class HashGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limits: HashLimits) {}

  /** Runs `fn` when a slot is free; throws PeerwayError('rate_limited') at once when the queue is full. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limits.concurrentHashes) {
      if (this.waiting.length >= this.limits.maxQueuedHashes)
        throw new PeerwayError(
          'rate_limited',
          'the server is busy checking other sign-ins: try again in a moment',
        );
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running++;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (running stays the same).
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Hashes running and waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
