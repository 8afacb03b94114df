import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from './password';

describe('password hashing', () => {
  it('verifies the right password only, with a fresh salt each time', async () => {
    const h1 = await hashPassword('correct horse');
    const h2 = await hashPassword('correct horse');
    expect(h1).toMatch(/^scrypt\$16384\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(h1).not.toBe(h2);
    expect(await verifyPassword('correct horse', h1)).toBe(true);
    expect(await verifyPassword('correct horsE', h1)).toBe(false);
    expect(await verifyPassword('', h1)).toBe(false);
  });

  it('reads the parameters from the hash', async () => {
    const h = await hashPassword('pw-12345');
    const [, , , , salt, key] = h.split('$');
    // Same salt and key but other parameters: a different derivation, so no match.
    expect(await verifyPassword('pw-12345', `scrypt$1024$8$1$${salt}$${key}`)).toBe(false);
  });

  it('never matches a malformed hash', async () => {
    for (const bad of [
      '',
      'bcrypt$x',
      'scrypt$abc$8$1$c2FsdA$a2V5',
      'scrypt$1000$8$1$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA', // N not a power of two
      'scrypt$1073741824$8$1$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA', // far too much memory
      'scrypt$16384$8$1$c2FsdA$a2V5', // key too short to mean anything
    ]) {
      expect(await verifyPassword('x', bad)).toBe(false);
    }
  });
});
