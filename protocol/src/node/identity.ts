/**
 * Node identity: an Ed25519 key pair made on the agent's first run.
 * The node ID is the raw public key in base64url; the short ID is the first
 * 6 hex characters of SHA-256 of the raw key. Node-only (uses node:crypto).
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { PeerwayError } from '../errors';

/** How far an agent's signing time may be from the server's clock. */
export const AUTH_CLOCK_SKEW_MS = 60_000;

/** The serialisable form kept in `$PEERWAY_HOME/agent.json`. */
export interface StoredIdentity {
  /** Ed25519 private key, PKCS#8 DER, base64url. */
  privateKey: string;
  /** Node ID: raw 32-byte public key, base64url. */
  nodeId: string;
}

export interface NodeIdentity {
  readonly nodeId: string;
  readonly shortId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Imports a raw base64url Ed25519 public key (a node ID) as a KeyObject. */
export function publicKeyFromNodeId(nodeId: string): KeyObject {
  const raw = Buffer.from(nodeId, 'base64url');
  if (raw.length !== 32 || raw.toString('base64url') !== nodeId) {
    throw new PeerwayError(
      'bad_request',
      'node ID must be a 32-byte Ed25519 public key in base64url',
    );
  }
  return createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, raw]),
    format: 'der',
    type: 'spki',
  });
}

function nodeIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64url');
}

/** The first 6 hex characters of SHA-256 of the raw public key. */
export function shortIdOf(nodeId: string): string {
  return createHash('sha256').update(Buffer.from(nodeId, 'base64url')).digest('hex').slice(0, 6);
}

/** Makes a fresh node identity. */
export function generateIdentity(): NodeIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const nodeId = nodeIdOf(publicKey);
  return { nodeId, shortId: shortIdOf(nodeId), privateKey, publicKey };
}

/** Serialises an identity for the agent's key file. */
export function storeIdentity(id: NodeIdentity): StoredIdentity {
  return {
    privateKey: id.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url'),
    nodeId: id.nodeId,
  };
}

/** Loads an identity from its stored form, checking the key matches the node ID. */
export function loadIdentity(stored: StoredIdentity): NodeIdentity {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({
      key: Buffer.from(stored.privateKey, 'base64url'),
      format: 'der',
      type: 'pkcs8',
    });
  } catch (cause) {
    throw new PeerwayError(
      'bad_request',
      'the stored private key is not a valid Ed25519 PKCS#8 key',
      { cause },
    );
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new PeerwayError('bad_request', 'the stored private key is not Ed25519');
  }
  const publicKey = createPublicKey(privateKey);
  const nodeId = nodeIdOf(publicKey);
  if (nodeId !== stored.nodeId) {
    throw new PeerwayError('bad_request', 'the stored node ID does not match the private key');
  }
  return { nodeId, shortId: shortIdOf(nodeId), privateKey, publicKey };
}

/** A fresh random nonce, base64url (32 bytes). */
export function newNonce(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The exact bytes an agent signs to answer a challenge. Binding the server URL
 * stops a proof made for one server being replayed to another; the nonce is
 * single-use per connection; the timestamp bounds the proof's life.
 */
export function challengePayload(
  serverUrl: string,
  nonce: string,
  timestamp: number,
  nodeId: string,
): Buffer {
  return Buffer.from(
    `peerway-agent-auth/v1\n${serverUrl}\n${nonce}\n${timestamp}\n${nodeId}`,
    'utf8',
  );
}

/** Signs a server challenge. */
export function signChallenge(
  id: NodeIdentity,
  serverUrl: string,
  nonce: string,
  timestamp: number,
): string {
  return sign(
    null,
    challengePayload(serverUrl, nonce, timestamp, id.nodeId),
    id.privateKey,
  ).toString('base64url');
}

/**
 * Verifies an agent's answer to a challenge. Throws a PeerwayError with code
 * `invalid_signature` (forged, or made for another server or nonce) or
 * `expired` (outside the clock skew).
 */
export function verifyChallenge(args: {
  nodeId: string;
  serverUrl: string;
  nonce: string;
  timestamp: number;
  signature: string;
  now: number;
}): void {
  if (Math.abs(args.now - args.timestamp) > AUTH_CLOCK_SKEW_MS) {
    throw new PeerwayError(
      'expired',
      "the proof timestamp is too far from the server clock; check the agent's clock",
    );
  }
  const key = publicKeyFromNodeId(args.nodeId);
  const sig = Buffer.from(args.signature, 'base64url');
  const ok =
    sig.length === 64 &&
    verify(
      null,
      challengePayload(args.serverUrl, args.nonce, args.timestamp, args.nodeId),
      key,
      sig,
    );
  if (!ok)
    throw new PeerwayError(
      'invalid_signature',
      'the challenge signature does not verify for this node key',
    );
}

// ---------------------------------------------------------------------------
// claim tokens: "pwc1.<payload>.<signature>", signed by the node

export interface ClaimPayload {
  nodeId: string;
  name: string;
  /** Expiry, unix seconds. */
  exp: number;
  /** Issue time, unix seconds (tokens from agents before it: `exp` − CLAIM_TOKEN_TTL_S). */
  iat: number;
  /** Unique per token: the server spends it when the node is claimed. */
  nonce: string;
}

const CLAIM_PREFIX = 'pwc1';
const CLAIM_DOMAIN = 'peerway-claim/v1\n';

/** Default life of a claim token the agent prints. */
export const CLAIM_TOKEN_TTL_S = 24 * 3600;

/** Makes a node-signed claim token for `name`, valid for `ttlSeconds`. */
export function createClaimToken(
  id: NodeIdentity,
  name: string,
  nowMs: number,
  ttlSeconds = CLAIM_TOKEN_TTL_S,
): string {
  const iat = Math.floor(nowMs / 1000);
  const payload: ClaimPayload = {
    nodeId: id.nodeId,
    name,
    iat,
    exp: iat + ttlSeconds,
    nonce: randomBytes(12).toString('base64url'),
  };
  const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  const sig = sign(null, Buffer.from(CLAIM_DOMAIN + body, 'utf8'), id.privateKey).toString(
    'base64url',
  );
  return `${CLAIM_PREFIX}.${body}.${sig}`;
}

/**
 * Verifies a claim token's signature (by the node key inside it) and its
 * life: issued no later than now (give or take the clock skew), expiring in
 * the future, and living no longer than CLAIM_TOKEN_TTL_S (so a link made to
 * last for years is refused). Whether it was spent is the server's business.
 * Throws `bad_request` (malformed), `invalid_signature` (forged) or `expired`.
 */
export function verifyClaimToken(token: string, nowMs: number): ClaimPayload {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== CLAIM_PREFIX || token.length > 2048) {
    throw new PeerwayError('bad_request', 'this is not a Peerway claim token');
  }
  const [, body, sig] = parts as [string, string, string];
  let payload: ClaimPayload;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    if (
      typeof parsed !== 'object' ||
      parsed === null ||
      typeof (parsed as ClaimPayload).nodeId !== 'string' ||
      typeof (parsed as ClaimPayload).name !== 'string' ||
      typeof (parsed as ClaimPayload).exp !== 'number' ||
      typeof (parsed as ClaimPayload).nonce !== 'string'
    ) {
      throw new Error('missing fields');
    }
    const p = parsed as Omit<ClaimPayload, 'iat'> & { iat?: unknown };
    const iat = typeof p.iat === 'number' ? p.iat : p.exp - CLAIM_TOKEN_TTL_S;
    payload = { nodeId: p.nodeId, name: p.name.slice(0, 64), exp: p.exp, iat, nonce: p.nonce };
  } catch (cause) {
    throw new PeerwayError('bad_request', 'the claim token is damaged (payload unreadable)', {
      cause,
    });
  }
  const key = publicKeyFromNodeId(payload.nodeId);
  const sigBytes = Buffer.from(sig, 'base64url');
  if (
    sigBytes.length !== 64 ||
    !verify(null, Buffer.from(CLAIM_DOMAIN + body, 'utf8'), key, sigBytes)
  ) {
    throw new PeerwayError(
      'invalid_signature',
      'the claim link was not signed by the node it names (forged or altered)',
    );
  }
  if (payload.exp * 1000 < nowMs) {
    throw new PeerwayError(
      'expired',
      'the claim link has expired; run `peerway-agent claim-url` for a new one',
    );
  }
  if (
    payload.exp - payload.iat > CLAIM_TOKEN_TTL_S ||
    payload.iat * 1000 > nowMs + AUTH_CLOCK_SKEW_MS
  )
    throw new PeerwayError(
      'bad_request',
      `a claim link lives ${CLAIM_TOKEN_TTL_S / 3600} h at most; run \`peerway-agent claim-url\` for a new one`,
    );
  return payload;
}
