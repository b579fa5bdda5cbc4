import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { request as undiciRequest } from 'undici';
import { AppError, createServiceApp, sendProblem, REQUEST_ID_HEADER, type Config, type DestinationStream } from '@refstack/shared';
import { DocsCache, registerDocs } from './docs.js';
import { setLegacyCookie, withLegacyAuthorization } from './legacy-session.js';
import { LEGACY_ROUTES, PROXY_ROUTES, type LegacyRoute, type Upstream } from './routes.js';

export interface GatewayAppOptions {
  logStream?: DestinationStream;
}

// OPTIONS is left to CORS preflight handling at the gateway; upstreams never see it.
const PROXIED_METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_SERVICE_UNAVAILABLE']);
// Headers a client may not set on its way upstream: the gateway alone says who the client is.
const CLIENT_ADDRESS_HEADERS = ['x-forwarded-for', 'x-real-ip', 'forwarded', 'x-forwarded-host', 'x-forwarded-proto'];

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

function readStream(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
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

  // API answers are JSON and never framed; the docs page relaxes this for its own assets below.
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-site' },
  });
  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['content-type', 'authorization', 'x-request-id', 'x-csrftoken'],
      exposedHeaders: ['x-request-id', 'retry-after'],
      maxAge: 600,
    });
  }
  await app.register(cookie);
  await registerDocs(app, new DocsCache([bases.auth, bases.referral], 2000));

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

  const legacyCookie = { secure: config.isProduction, maxAgeSeconds: config.tokens.accessTtlSeconds };

  const forward = (upstream: Upstream, legacy?: LegacyRoute) => (request: FastifyRequest, reply: FastifyReply) => {
    const queryAt = request.url.indexOf('?');
    const query = queryAt >= 0 ? request.url.slice(queryAt) : '';
    const path = legacy?.target ?? (queryAt >= 0 ? request.url.slice(0, queryAt) : request.url);
    // Computed before the upstream call so that a refusal (a missing CSRF header) is a plain problem.
    const extraHeaders: IncomingHttpHeaders = legacy ? withLegacyAuthorization(request, request.headers) : request.headers;
    // The raw bytes go upstream as they came; reply-from would otherwise re-encode JSON bodies.
    const body = Buffer.isBuffer(request.body) ? { body: request.body, contentType: request.headers['content-type'] ?? 'application/octet-stream' } : {};
    const setsLegacyCookie = legacy?.target === '/api/v1/auth/verify';
    return reply.from(`${bases[upstream]}${path}${query}`, {
      ...body,
      rewriteRequestHeaders: (_raw, headers) => {
        const rest: IncomingHttpHeaders = { ...headers };
        for (const name of CLIENT_ADDRESS_HEADERS) delete rest[name];
        if (extraHeaders.authorization) rest.authorization = extraHeaders.authorization;
        // The gateway is the only source of X-Forwarded-For: a spoofed address cannot buy a fresh
        // rate-limit window upstream.
        return { ...rest, 'x-forwarded-for': request.socket.remoteAddress ?? '', [REQUEST_ID_HEADER]: request.id };
      },
      ...(setsLegacyCookie
        ? {
            onResponse: (_request, cookieReply, raw) => {
              // reply-from hands over its upstream response (status and body stream), typed loosely.
              const res = raw as unknown as { statusCode: number; stream: NodeJS.ReadableStream };
              readStream(res.stream).then(
                (payload) => {
                  if (res.statusCode === 200) setLegacyCookie(cookieReply as FastifyReply, payload, legacyCookie);
                  void cookieReply.send(payload);
                },
                (error: unknown) => sendProblem(cookieReply as FastifyReply, upstreamFailure(upstream, error as { code?: string })),
              );
            },
          }
        : {}),
      onError: (errorReply, { error }) => {
        request.log.warn({ upstream, reason: (error as Error).message }, 'upstream failed');
        sendProblem(errorReply as FastifyReply, upstreamFailure(upstream, error as { code?: string }));
      },
    });
  };

  for (const route of PROXY_ROUTES) {
    for (const path of route.paths) app.route({ method: PROXIED_METHODS, url: path, handler: forward(route.upstream) });
  }
  for (const legacy of LEGACY_ROUTES) {
    app.route({ method: legacy.method, url: legacy.path, handler: forward(legacy.upstream, legacy) });
  }
  // Internal routes exist only between services; the gateway never forwards them.
  app.all('/internal/*', async () => {
    throw new AppError('not_found', 'No such resource.');
  });

  return app;
}
