import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  createClaimToken,
  generateIdentity,
  loadIdentity,
  shortIdOf,
  signChallenge,
  storeIdentity,
  verifyChallenge,
  verifyClaimToken,
} from './identity';

describe('node identity', () => {
  it('node ID is the raw key; short ID is 6 hex of its SHA-256', () => {
    const id = generateIdentity();
    expect(Buffer.from(id.nodeId, 'base64url')).toHaveLength(32);
    expect(id.shortId).toBe(
      createHash('sha256').update(Buffer.from(id.nodeId, 'base64url')).digest('hex').slice(0, 6),
    );
    expect(shortIdOf(id.nodeId)).toBe(id.shortId);
  });

  it('round-trips through storage and refuses a mismatched key file', () => {
    const id = generateIdentity();
    const stored = storeIdentity(id);
    expect(loadIdentity(stored).nodeId).toBe(id.nodeId);
    expect(() => loadIdentity({ ...stored, nodeId: generateIdentity().nodeId })).toThrow(
      /does not match/,
    );
    expect(() => loadIdentity({ ...stored, privateKey: 'garbage' })).toThrow(/not a valid Ed25519/);
  });

  it('verifies challenge proofs, bound to server, nonce, time and key', () => {
    const id = generateIdentity();
    const now = Date.now();
    const signature = signChallenge(id, 'https://gw', 'nonce-1', now);
    const base = {
      nodeId: id.nodeId,
      serverUrl: 'https://gw',
      nonce: 'nonce-1',
      timestamp: now,
      signature,
      now,
    };
    expect(() => verifyChallenge(base)).not.toThrow();
    expect(() => verifyChallenge({ ...base, serverUrl: 'https://other' })).toThrow(/signature/);
    expect(() => verifyChallenge({ ...base, nonce: 'nonce-2' })).toThrow(/signature/);
    expect(() => verifyChallenge({ ...base, nodeId: generateIdentity().nodeId })).toThrow(
      /signature/,
    );
    expect(() => verifyChallenge({ ...base, now: now + 120_000 })).toThrow(/clock/);
    expect(() => verifyChallenge({ ...base, signature: 'A'.repeat(86) })).toThrow(/signature/);
    expect(() => verifyChallenge({ ...base, nodeId: 'not-a-key' })).toThrow(/32-byte/);
  });

  it('claim tokens: valid, expired, forged, altered, malformed', () => {
    const id = generateIdentity();
    const now = Date.now();
    const t = createClaimToken(id, 'home', now);
    expect(verifyClaimToken(t, now)).toMatchObject({ nodeId: id.nodeId, name: 'home' });
    expect(() => verifyClaimToken(t, now + 2 * 86_400_000)).toThrow(
      expect.objectContaining({ code: 'expired' }),
    );
    const [p, body, sig] = t.split('.');
    const other = createClaimToken(generateIdentity(), 'home', now).split('.')[2];
    expect(() => verifyClaimToken(`${p}.${body}.${other}`, now)).toThrow(
      expect.objectContaining({ code: 'invalid_signature' }),
    );
    const altered = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body!, 'base64url').toString()), exp: 9e9 }),
    ).toString('base64url');
    expect(() => verifyClaimToken(`${p}.${altered}.${sig}`, now)).toThrow(
      expect.objectContaining({ code: 'invalid_signature' }),
    );
    for (const junk of [
      '',
      'pwc1',
      'pwc1..',
      'x.y.z',
      `pwc1.${'!'.repeat(10)}.${sig}`,
      `pwc1.${Buffer.from('{"nodeId":1}').toString('base64url')}.${sig}`,
    ]) {
      expect(() => verifyClaimToken(junk, now)).toThrow(
        expect.objectContaining({ code: 'bad_request' }),
      );
    }
  });

  it('claim tokens expire on time: a token signed to live longer than a day is refused', () => {
    const id = generateIdentity();
    const now = Date.now();
    const forever = createClaimToken(id, 'home', now, 10 * 365 * 86_400);
    expect(() => verifyClaimToken(forever, now)).toThrow(
      expect.objectContaining({ code: 'bad_request', message: expect.stringMatching(/24 h/) }),
    );
    // issued in the future (beyond the clock skew)
    const later = createClaimToken(id, 'home', now + 3_600_000, 60);
    expect(() => verifyClaimToken(later, now)).toThrow(
      expect.objectContaining({ code: 'bad_request' }),
    );
    const t = createClaimToken(id, 'home', now, 60);
    expect(verifyClaimToken(t, now + 59_000).iat).toBe(Math.floor(now / 1000));
    expect(() => verifyClaimToken(t, now + 61_000)).toThrow(
      expect.objectContaining({ code: 'expired' }),
    );
  });
});
