import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { request as undiciRequest } from 'undici';
import { AppError, createServiceApp, sendProblem, REQUEST_ID_HEADER, type Config, type DestinationStream } from '@refstack/shared';
import { LEGACY_ROUTES, PROXY_ROUTES, type Upstream } from './routes.js';

export interface GatewayAppOptions {
  logStream?: DestinationStream;
}

const ALL_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_SERVICE_UNAVAILABLE']);

function upstreamFailure(upstream: Upstream, error: { code?: string; cause?: { code?: string } }): AppError {
  const code = error.cause?.code ?? error.code;
  if (code && UNAVAILABLE_CODES.has(code)) {
    return new AppError('service_unavailable', `The ${upstream} service is not answering; try again shortly.`, { retryAfter: 1 });
  }
  return new AppError('bad_gateway', `The ${upstream} service gave no usable answer.`);
}

async function upstreamReady(base: string, timeoutMs: number): Promise<unknown> {
  const res = await undiciRequest(`${base}/health/ready`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const body = (await res.body.json()) as { checks?: unknown };
  if (res.statusCode !== 200) throw new Error(`not ready (HTTP ${res.statusCode})`);
  return body.checks;
}

export async function buildApp(config: Config, options: GatewayAppOptions = {}): Promise<FastifyInstance> {
  const bases: Record<Upstream, string> = { auth: config.urls.auth, referral: config.urls.referral };
  const app = createServiceApp({
    service: 'gateway',
    config,
    logStream: options.logStream,
    readiness: {
      auth: () => upstreamReady(bases.auth, 2000),
      referral: () => upstreamReady(bases.referral, 2000),
    },
  });

  // Bodies pass through untouched; the upstream parses and validates them (and answers 400/415).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  await app.register(replyFrom, {
    disableRequestLogging: true,
    undici: {
      connections: 128,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connectTimeout: 2000,
      headersTimeout: config.upstreamTimeoutMs,
      bodyTimeout: config.upstreamTimeoutMs,
    },
  });

  const forward = (upstream: Upstream, target?: string) => (request: FastifyRequest, reply: FastifyReply) => {
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    const path = target ?? request.url.slice(0, request.url.length - query.length);
    // The raw bytes go upstream as they came; reply-from would otherwise re-encode JSON bodies.
    const body = Buffer.isBuffer(request.body) ? { body: request.body, contentType: request.headers['content-type'] ?? 'application/octet-stream' } : {};
    return reply.from(`${bases[upstream]}${path}${query}`, {
      ...body,
      rewriteRequestHeaders: (_raw, headers) => {
        // The gateway is the only source of X-Forwarded-For: a client's own header is dropped so a
        // spoofed address cannot buy a fresh rate-limit window upstream.
        const { 'x-forwarded-for': _spoofed, 'x-real-ip': _real, forwarded: _fwd, ...rest } = headers;
        return { ...rest, 'x-forwarded-for': request.socket.remoteAddress ?? '', [REQUEST_ID_HEADER]: request.id };
      },
      onError: (errorReply, { error }) => {
        request.log.warn({ upstream, reason: (error as Error).message }, 'upstream failed');
        sendProblem(errorReply as FastifyReply, upstreamFailure(upstream, error as { code?: string }));
      },
    });
  };

  for (const route of PROXY_ROUTES) {
    for (const path of route.paths) app.route({ method: [...ALL_METHODS], url: path, handler: forward(route.upstream) });
  }
  for (const legacy of LEGACY_ROUTES) {
    app.route({ method: legacy.method, url: legacy.path, handler: forward(legacy.upstream, legacy.target) });
  }
  // Internal routes exist only between services; the gateway never forwards them.
  app.all('/internal/*', async () => {
    throw new AppError('not_found', 'No such resource.');
  });

  return app;
}
