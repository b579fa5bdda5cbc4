import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';

export interface EcPublicJwk {
  kty: string;
  crv: string;
  x: string;
  y: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

export interface PublishedKey {
  kid: string;
  publicPem: string;
  jwk: EcPublicJwk;
}

export interface SigningKey extends PublishedKey {
  privatePem: string;
}

export class KeyError extends Error {
  override name = 'KeyError';
}

/** Env files often carry a PEM on one line with `\n` escapes. */
export function pemFromEnv(value: string): string {
  return value.includes('\\n') ? value.replace(/\\n/g, '\n') : value;
}

function publish(publicKey: KeyObject): PublishedKey {
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KeyError('signing keys must be EC keys on the P-256 curve (ES256)');
  }
  const { crv, kty, x, y } = publicKey.export({ format: 'jwk' }) as Required<
    Pick<JsonWebKey, 'crv' | 'kty' | 'x' | 'y'>
  >;
  // RFC 7638 thumbprint: the same key always gets the same kid, on every instance.
  const kid = createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  return {
    kid,
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    jwk: { kty, crv, x, y, kid, alg: 'ES256', use: 'sig' },
  };
}

function signingKeyFromPem(pem: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pemFromEnv(pem));
  } catch {
    throw new KeyError('JWT_PRIVATE_KEY is not a readable PEM private key');
  }
  const published = publish(createPublicKey(privateKey));
  return { ...published, privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g;

/**
 * The key that signs (the newest) and every key still published for verification: JWT_PUBLIC_KEYS
 * carries a key about to sign (published first, so every verifier knows it in time) and a retired
 * one whose tokens have not expired yet. The README's key rotation section gives the phases.
 */
export class Keyring {
  private readonly byKid: Map<string, PublishedKey>;

  constructor(
    readonly signing: SigningKey,
    retired: readonly PublishedKey[] = [],
  ) {
    this.byKid = new Map([signing, ...retired].map((key) => [key.kid, key]));
  }

  publicPem(kid: string | undefined): string | undefined {
    return kid === undefined ? undefined : this.byKid.get(kid)?.publicPem;
  }

  jwks(): { keys: PublishedKey['jwk'][] } {
    return { keys: [...this.byKid.values()].map((key) => key.jwk) };
  }
}

export function retiredKeysFromEnv(value: string | undefined): PublishedKey[] {
  if (!value) return [];
  const blocks = pemFromEnv(value).match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new KeyError('JWT_PUBLIC_KEYS holds no PEM public key');
  return blocks.map((pem) => publish(createPublicKey(pem)));
}

/**
 * Production: the PEM from the environment. Development: a key generated once and kept in Redis,
 * so restarts (and every instance) keep signing with the same key and sessions survive.
 */
export async function loadKeyring(options: {
  privateKeyPem?: string;
  publicKeysPem?: string;
  redis: Redis;
  redisKeyPrefix: string;
}): Promise<Keyring> {
  const retired = retiredKeysFromEnv(options.publicKeysPem);
  if (options.privateKeyPem) return new Keyring(signingKeyFromPem(options.privateKeyPem), retired);

  const key = `${options.redisKeyPrefix}:jwt:dev-signing-key`;
  let pem = await options.redis.get(key);
  if (!pem) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    // NX: when two instances start together, both end up with the first one's key.
    await options.redis.set(key, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 'NX');
    pem = await options.redis.get(key);
    if (!pem) throw new KeyError('could not store the development signing key in Redis');
  }
  return new Keyring(signingKeyFromPem(pem), retired);
}
