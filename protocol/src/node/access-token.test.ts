import { describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import {
  importServerKey,
  serviceAudience,
  signServiceAccessToken,
  verifyServiceAccessToken,
} from './access-token';

describe('service access tokens', () => {
  it('verify for their service only, from their issuer only, until they expire', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
    const pub = await importServerKey((await exportJWK(publicKey)) as Record<string, unknown>);
    const now = Date.now();
    const t = await signServiceAccessToken({
      privateKey,
      issuer: 'https://gw',
      service: 'blog',
      subject: 'u1',
      access: 'private',
      nowMs: now,
    });
    await expect(
      verifyServiceAccessToken(t, {
        publicKey: pub,
        issuer: 'https://gw',
        service: 'blog',
        nowMs: now,
      }),
    ).resolves.toMatchObject({ subject: 'u1', service: 'blog' });
    await expect(
      verifyServiceAccessToken(t, {
        publicKey: pub,
        issuer: 'https://gw',
        service: 'wiki',
        nowMs: now,
      }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    await expect(
      verifyServiceAccessToken(t, {
        publicKey: pub,
        issuer: 'https://evil',
        service: 'blog',
        nowMs: now,
      }),
    ).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(
      verifyServiceAccessToken(t, {
        publicKey: pub,
        issuer: 'https://gw',
        service: 'blog',
        nowMs: now + 3600_000,
      }),
    ).rejects.toMatchObject({ code: 'expired' });
    await expect(
      verifyServiceAccessToken(undefined, {
        publicKey: pub,
        issuer: 'https://gw',
        service: 'blog',
      }),
    ).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(
      verifyServiceAccessToken('a.b.c', { publicKey: pub, issuer: 'https://gw', service: 'blog' }),
    ).rejects.toMatchObject({ code: 'unauthorized' });
    const other = await generateKeyPair('EdDSA');
    const forged = await signServiceAccessToken({
      privateKey: other.privateKey,
      issuer: 'https://gw',
      service: 'blog',
      subject: 'u1',
      access: 'private',
    });
    await expect(
      verifyServiceAccessToken(forged, { publicKey: pub, issuer: 'https://gw', service: 'blog' }),
    ).rejects.toMatchObject({ code: 'unauthorized' });
    // alg confusion: an HS256 token is refused
    const hs = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('https://gw')
      .setAudience(serviceAudience('blog'))
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('k'.repeat(32)));
    await expect(
      verifyServiceAccessToken(hs, { publicKey: pub, issuer: 'https://gw', service: 'blog' }),
    ).rejects.toMatchObject({ code: 'unauthorized' });
  });
});
