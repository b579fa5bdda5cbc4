import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { request } from 'undici';
import { AppError } from '@refstack/shared/contracts';

export interface JwksClientOptions {
  url: string;
  /** Other auth instances' key sets (AUTH_URLS), asked in turn when `url` cannot answer. */
  alternates?: readonly string[];
  timeoutMs: number;
  /** Least time between two fetches triggered by unknown kids (a forged kid must not become a flood). */
  minRefreshMs?: number;
  now?: () => number;
}

export interface JwksLog {
  warn(obj: object, msg: string): void;
}

/** Called with the kids whose key is gone from the set (or changed) after a refresh. */
export type RetiredKeysListener = (kids: ReadonlySet<string>) => void;

/**
 * The auth service's public keys, kept in memory and fetched again every refresh interval (so a key
 * auth stops publishing, say a leaked one, stops verifying here too) and when a token names a key
 * not seen yet (rotation), then at most once per `minRefreshMs`. No call to auth per request. A
 * failed fetch keeps the last good keys: auth being away must not turn every token away with it.
 */
export class JwksClient {
  private keys = new Map<string, string>();
  private lastFetch = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private log: JwksLog | undefined;
  private readonly listeners = new Set<RetiredKeysListener>();
  private readonly minRefreshMs: number;
  private readonly now: () => number;

  constructor(private readonly options: JwksClientOptions) {
    this.minRefreshMs = options.minRefreshMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /** Refreshes every `intervalMs` until stop(); failures are logged and the last keys kept. */
  start(intervalMs: number, log: JwksLog): void {
    this.stop();
    this.log = log;
    this.timer = setInterval(() => void this.refresh().catch((error: unknown) => this.failed(error)), intervalMs);
    // A refresh in flight must not keep a closing process alive.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  onRetired(listener: RetiredKeysListener): void {
    this.listeners.add(listener);
  }

  isPublished(kid: string): boolean {
    return this.keys.has(kid);
  }

  /** Fetches the key set now (one fetch at a time); rejects, keeping the last keys, when it fails. */
  async refresh(): Promise<void> {
    this.inflight ??= this.fetchKeys().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private failed(error: unknown): void {
    this.log?.warn(
      { reason: (error as Error).message, url: this.options.url },
      'JWKS refresh failed; keeping the last keys',
    );
  }

  private async fetchKeys(): Promise<void> {
    this.lastFetch = this.now();
    // Every auth instance publishes the same keys (they live in Redis): the first that answers will do.
    let body: { keys?: Array<JsonWebKey & { kid?: string; alg?: string }> } | undefined;
    let failure: unknown;
    for (const url of [this.options.url, ...(this.options.alternates ?? [])]) {
      try {
        body = await this.fetchSet(url);
        break;
      } catch (error) {
        failure = error;
      }
    }
    if (!body) throw failure;
    const keys = new Map<string, string>();
    for (const jwk of body.keys ?? []) {
      if (!jwk.kid || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || (jwk.alg && jwk.alg !== 'ES256')) continue;
      keys.set(
        jwk.kid,
        createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString(),
      );
    }
    // Auth always publishes the key it signs with: an empty set is a fault there, not a retirement
    // of every key, and taking it would refuse every token until auth recovers.
    if (keys.size === 0) throw new Error('JWKS holds no usable key');
    const retired = new Set([...this.keys].filter(([kid, pem]) => keys.get(kid) !== pem).map(([kid]) => kid));
    this.keys = keys;
    if (retired.size > 0) for (const listener of this.listeners) listener(retired);
  }

  private async fetchSet(url: string): Promise<{ keys?: Array<JsonWebKey & { kid?: string; alg?: string }> }> {
    const res = await request(url, { headersTimeout: this.options.timeoutMs, bodyTimeout: this.options.timeoutMs });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`JWKS answered HTTP ${res.statusCode}`);
    }
    return (await res.body.json()) as { keys?: Array<JsonWebKey & { kid?: string; alg?: string }> };
  }

  /** The PEM of a key by kid; unknown kids are refused with 401, an unreachable JWKS with 503. */
  async publicPem(kid: unknown): Promise<string> {
    if (typeof kid !== 'string') throw new AppError('unauthorized', 'The access token names no key.');
    const known = this.keys.get(kid);
    if (known) return known;
    if (this.now() - this.lastFetch >= this.minRefreshMs || this.keys.size === 0) {
      try {
        await this.refresh();
      } catch (error) {
        this.failed(error);
        if (this.keys.size === 0)
          throw new AppError('service_unavailable', 'Tokens cannot be checked right now; try again shortly.', {
            retryAfter: 1,
          });
      }
    }
    const fetched = this.keys.get(kid);
    if (!fetched) throw new AppError('unauthorized', 'The access token was not signed by a known key.');
    return fetched;
  }
}
