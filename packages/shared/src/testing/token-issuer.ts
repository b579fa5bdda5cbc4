import {
  createPrivateKey,
  createPublicKey,
  createSign,
  generateKeyPairSync,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACCESS_TOKEN_ALGORITHM } from '../contracts/access-token.js';
import type { Teardownable } from './test-database.js';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export interface IssuerKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/**
 * Signs access tokens as the auth service does (ES256, a `kid`, the contract's claims with the
 * test configuration's issuer and audience), and can serve the matching JWKS over HTTP. A claim
 * given as `undefined` is left out of the token altogether.
 */
export class TestTokenIssuer {
  readonly keys: IssuerKey[] = [];
  jwksUrl = '';
  jwksFetches = 0;
  /** Kids still signing here but no longer published (a retired or leaked key). */
  readonly retired = new Set<string>();
  /** What the JWKS endpoint answers instead of the keys: an HTTP error, or a set with no usable key. */
  fault: 'http_500' | 'no_keys' | undefined;

  constructor(
    private readonly defaults: { issuer: string; audience: string } = { issuer: 'refstack-auth', audience: 'refstack' },
  ) {}

  /** A new key (or the given PEM private key) to sign with, under `kid` or a fresh one. */
  addKey(options: { privatePem?: string; kid?: string } = {}): string {
    const privateKey = options.privatePem
      ? createPrivateKey(options.privatePem)
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const kid = options.kid ?? randomUUID();
    this.keys.push({ kid, privateKey, publicKey: createPublicKey(privateKey) });
    return kid;
  }

  /** Serves `/.well-known/jwks.json` with the published keys until the test ends. */
  async serveJwks(t: Teardownable): Promise<string> {
    if (this.keys.length === 0) this.addKey();
    const server: Server = createServer((request, response) => {
      this.jwksFetches += 1;
      const published = this.keys.filter((k) => !this.retired.has(k.kid));
      const keys = published.map((k) => ({
        ...k.publicKey.export({ format: 'jwk' }),
        kid: k.kid,
        alg: ACCESS_TOKEN_ALGORITHM,
        use: 'sig',
      }));
      const status = this.fault === 'http_500' ? 500 : request.url === '/.well-known/jwks.json' ? 200 : 404;
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(status === 200 ? { keys: this.fault === 'no_keys' ? [] : keys } : { error: 'no' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    this.jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    return this.jwksUrl;
  }

  /** A compact JWS over the claims (defaults filled in) with the first key, or the one named. */
  sign(claims: Record<string, unknown>, options: { kid?: string; header?: Record<string, unknown> } = {}): string {
    if (this.keys.length === 0) this.addKey();
    const key = options.kid ? this.keys.find((k) => k.kid === options.kid) : this.keys[0];
    if (!key) throw new Error(`no key ${options.kid}`);
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      iss: this.defaults.issuer,
      aud: this.defaults.audience,
      iat: now,
      exp: now + 900,
      jti: randomUUID(),
      roles: [],
      ...claims,
    };
    const header = { alg: ACCESS_TOKEN_ALGORITHM, typ: 'JWT', kid: key.kid, ...options.header };
    const input = `${b64(header)}.${b64(payload)}`;
    const signature = createSign('SHA256').update(input).sign({ key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  }

  tokenFor(user: { id: string; phone: string }): string {
    return this.sign({ sub: user.id, phone: user.phone });
  }
}
