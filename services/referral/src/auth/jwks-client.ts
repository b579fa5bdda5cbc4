import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { request } from 'undici';
import { AppError } from '@refstack/shared';

export interface JwksClientOptions {
  url: string;
  timeoutMs: number;
  /** Least time between two fetches triggered by unknown kids (a forged kid must not become a flood). */
  minRefreshMs?: number;
  now?: () => number;
}

/**
 * The auth service's public keys, fetched once and kept; fetched again only when a token names a
 * key not seen yet (rotation), and then at most once per `minRefreshMs`. No call to auth per request.
 */
export class JwksClient {
  private keys = new Map<string, string>();
  private lastFetch = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private readonly minRefreshMs: number;
  private readonly now: () => number;

  constructor(private readonly options: JwksClientOptions) {
    this.minRefreshMs = options.minRefreshMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.keys.size;
  }

  async refresh(): Promise<void> {
    this.inflight ??= this.fetchKeys().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchKeys(): Promise<void> {
    this.lastFetch = this.now();
    const res = await request(this.options.url, { headersTimeout: this.options.timeoutMs, bodyTimeout: this.options.timeoutMs });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`JWKS answered HTTP ${res.statusCode}`);
    }
    const body = (await res.body.json()) as { keys?: Array<JsonWebKey & { kid?: string; alg?: string }> };
    const keys = new Map<string, string>();
    for (const jwk of body.keys ?? []) {
      if (!jwk.kid || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || (jwk.alg && jwk.alg !== 'ES256')) continue;
      keys.set(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString());
    }
    this.keys = keys;
  }

  /** The PEM of a key by kid; unknown kids are refused with 401, an unreachable JWKS with 503. */
  async publicPem(kid: unknown): Promise<string> {
    if (typeof kid !== 'string') throw new AppError('unauthorized', 'The access token names no key.');
    const known = this.keys.get(kid);
    if (known) return known;
    if (this.now() - this.lastFetch >= this.minRefreshMs || this.keys.size === 0) {
      try {
        await this.refresh();
      } catch {
        if (this.keys.size === 0) throw new AppError('service_unavailable', 'Tokens cannot be checked right now; try again shortly.', { retryAfter: 1 });
      }
    }
    const fetched = this.keys.get(kid);
    if (!fetched) throw new AppError('unauthorized', 'The access token was not signed by a known key.');
    return fetched;
  }
}
