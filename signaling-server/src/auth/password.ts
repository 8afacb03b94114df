/** Password hashing with scrypt (node:crypto): salted, parameters kept in the hash string. */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

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
