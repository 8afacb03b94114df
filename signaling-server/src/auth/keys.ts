/**
 * The server's own keys, made on first start and kept in the store so every
 * instance (and every restart) uses the same ones: an HS256 secret for
 * session JWTs, and an Ed25519 pair for service access tokens (agents verify
 * those with the public half).
 */
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { Store } from '../store/store';

export interface ServerKeys {
  sessionSecret: Uint8Array;
  accessPrivateKey: CryptoKey;
  accessPublicJwk: Record<string, unknown>;
}

/** Loads the keys, creating them atomically on first start. */
export async function loadServerKeys(store: Store): Promise<ServerKeys> {
  const secret = await store.setSettingIfAbsent(
    'session_secret',
    randomBytes(32).toString('base64url'),
  );
  let stored = await store.getSetting('access_key');
  if (!stored) {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    stored = await store.setSettingIfAbsent(
      'access_key',
      JSON.stringify(await exportJWK(privateKey)),
    );
  }
  const jwk = JSON.parse(stored) as JWK;
  const accessPrivateKey = (await importJWK(jwk, 'EdDSA')) as CryptoKey;
  const { d: _d, ...publicJwk } = jwk;
  return {
    sessionSecret: Buffer.from(secret, 'base64url'),
    accessPrivateKey,
    accessPublicJwk: { ...publicJwk, alg: 'EdDSA', use: 'sig' },
  };
}
