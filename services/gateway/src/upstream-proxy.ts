import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { Dispatcher } from 'undici';
import { AppError, INTERNAL_TOKEN_HEADER, REQUEST_ID_HEADER, withoutPort } from '@refstack/shared/contracts';
import { isDependencyUnavailable, requestWhole, type UpstreamAnswer } from '@refstack/shared/platform';
import type { UpstreamPools } from './readiness.js';

export type Upstream = 'auth' | 'referral';

// Hop-by-hop headers (RFC 9110 §7.6.1), the ones the gateway alone sets, and the service
// credential, which no client may present. `expect` is answered here: the gateway has read the
// whole body before it forwards anything (and undici refuses to send the header at all). Every
// `x-forwarded-*` header goes too (FORWARDED_PREFIX), and the other names balancers and CDNs give a
// client's address or original URL: a client could write any of them, and nothing behind the
// gateway may ever take one for the balancer's word. Cookies stay here as well: no service reads
// one (the legacy login cookie becomes an Authorization header where the legacy routes take it),
// and sent on beside that copy it would make the request twice the size the client sent.
const FORWARDED_PREFIX = 'x-forwarded-';
const DROP_REQUEST = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'host',
  'content-length',
  'x-real-ip',
  'forwarded',
  'true-client-ip',
  'cf-connecting-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'x-original-url',
  'x-rewrite-url',
  'proxy-authorization',
  'cookie',
  REQUEST_ID_HEADER,
  INTERNAL_TOKEN_HEADER,
]);
const DROP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'date',
  REQUEST_ID_HEADER,
]);

export interface ForwardOptions {
  path: string;
  /** Overrides for headers sent upstream (e.g. an Authorization made from the legacy cookie). */
  headers?: IncomingHttpHeaders;
  /** Sees the upstream answer before it is sent on (the legacy login sets its cookie here). */
  onAnswer?: (status: number, body: Buffer, reply: FastifyReply) => void;
}

function connectionOptions(value: string | string[] | undefined): Set<string> {
  if (value === undefined) return new Set();
  return new Set((Array.isArray(value) ? value.join(',') : value).split(',').map((name) => name.trim().toLowerCase()));
}

/**
 * The client's address as upstreams are told it, when a trusted balancer's header names it. Some
 * balancers write it with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`), and upstreams count
 * requests per address: passed on so, every new source port would be a new client to them.
 */
export function clientAddress(request: FastifyRequest): string {
  const address = withoutPort(request.ip);
  if (isIP(address) !== 0) return address;
  // No address at all: the balancer's own is the only one known.
  request.log.warn({ forwardedFor: address.slice(0, 64) }, 'a trusted proxy named no client address');
  return request.socket.remoteAddress ?? address;
}

function stopping(cause?: unknown): AppError {
  return new AppError(
    'service_unavailable',
    'This gateway is stopping; send the request again.',
    { retryAfter: 1 },
    cause,
  );
}

/** Methods whose repeat changes nothing: a dropped one may go to another instance. */
const IDEMPOTENT = new Set(['GET', 'HEAD']);

/**
 * Forwards requests to the services over keep-alive pools (one per instance), passing bodies
 * through as bytes. API answers are small JSON documents, so each is read whole and sent on in
 * one write. Instances are chosen round-robin (UpstreamPool); one that refuses connections, times
 * out or drops one is taken out. A request goes to a second instance only when that is safe: it
 * never reached the first, or it is a read. A service that is down or too slow becomes a 503
 * problem, never a hang.
 */
export class UpstreamProxy {
  /** Set once the requests under way were called off: a request that comes later is not sent either. */
  private calledOff = false;

  constructor(
    private readonly pools: UpstreamPools,
    /** How long an instance's whole answer may take once the request is sent (UPSTREAM_TIMEOUT_MS). */
    private readonly timeoutMs: number,
    /** Whether a client's address may come from a balancer's header (GATEWAY_TRUSTED_PROXIES). */
    private readonly behindProxies: boolean,
  ) {}

  async forward(
    upstream: Upstream,
    request: FastifyRequest,
    reply: FastifyReply,
    options: ForwardOptions,
  ): Promise<FastifyReply> {
    // In the last moment before the drain's cut: sent now, it would be cut with its client.
    if (this.calledOff) throw stopping();
    // Headers the client names in its Connection header are hop-by-hop too (RFC 9110 §7.6.1).
    const named = connectionOptions(request.headers.connection);
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value !== undefined && !DROP_REQUEST.has(name) && !named.has(name) && !name.startsWith(FORWARDED_PREFIX))
        headers[name] = value;
    }
    for (const [name, value] of Object.entries(options.headers ?? {})) if (value !== undefined) headers[name] = value;
    // The gateway is the only source of X-Forwarded-For: a client's own is dropped above, so a
    // spoofed address cannot buy a fresh rate-limit window upstream. `request.ip` is the socket's
    // address unless that is a proxy of GATEWAY_TRUSTED_PROXIES, whose header then names the client.
    headers['x-forwarded-for'] = this.behindProxies ? clientAddress(request) : request.ip;
    headers[REQUEST_ID_HEADER] = request.id;
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;

    const pool = this.pools[upstream];
    const dispatch: Dispatcher.DispatchOptions = {
      path: options.path,
      method: request.method as Dispatcher.HttpMethod,
      headers,
      body,
    };
    let answer: UpstreamAnswer | undefined;
    let failure: unknown;
    const tries = pool.order().slice(0, 2);
    for (const instance of tries) {
      try {
        answer = await requestWhole(instance.pool, dispatch, { answerWithinMs: this.timeoutMs });
        break;
      } catch (error) {
        failure = error;
        // Called off (the gateway is stopping): not tried elsewhere, whatever the error says.
        if (this.calledOff) throw stopping(error);
        const kind = pool.failed(instance, error);
        request.log.warn({ upstream, instance: instance.base, reason: (error as Error).message }, 'upstream failed');
        if (kind !== 'not_reached' && !(kind === 'dropped' && IDEMPOTENT.has(request.method))) break;
      }
    }
    if (!answer) {
      const error = failure;
      if (isDependencyUnavailable(error)) {
        throw new AppError(
          'service_unavailable',
          `The ${upstream} service is not answering; try again shortly.`,
          { retryAfter: 1 },
          error,
        );
      }
      throw new AppError('bad_gateway', `The ${upstream} service gave no usable answer.`, {}, error);
    }
    const { status, rawHeaders, payload } = answer;
    // A header the upstream repeats is passed on repeated, as it came.
    const answerHeaders: Record<string, string | string[]> = {};
    // A HEAD answer's length is its GET's, which only the upstream knows; any other is the payload's.
    const head = request.method === 'HEAD';
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1').toLowerCase();
      if (DROP_RESPONSE.has(name) && !(head && name === 'content-length')) continue;
      const value = rawHeaders[i + 1]!.toString('latin1');
      const earlier = answerHeaders[name];
      answerHeaders[name] =
        earlier === undefined ? value : Array.isArray(earlier) ? [...earlier, value] : [earlier, value];
    }
    void reply.headers(answerHeaders);
    options.onAnswer?.(status, payload, reply);
    return reply.code(status).send(payload);
  }

  /**
   * Ends every request still waiting on an instance: each of their clients is answered 503 (a
   * stopping gateway's answers close their connections) instead of having its connection cut.
   */
  callOffAll(): void {
    this.calledOff = true;
    this.pools.auth.callOff();
    this.pools.referral.callOff();
  }

  async close(): Promise<void> {
    // Also called off: by now the server has closed every client connection, so a request still
    // under way has nobody to answer, and the pools' close would wait for it.
    this.callOffAll();
    await Promise.all([this.pools.auth.close(), this.pools.referral.close()]);
  }
}
