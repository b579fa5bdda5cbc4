import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { AppError, trustingProxies, type Config } from '@refstack/shared/contracts';
import {
  beforeDrainCut,
  createServiceApp,
  type DestinationStream,
  EDGE_MAX_HEADER_BYTES,
  type ServerLimits,
  type UpstreamPool,
} from '@refstack/shared/platform';
import { DocsCache, registerDocs } from './docs.js';
import { setLegacyCookie, withLegacyAuthorization } from './legacy-session.js';
import { rememberPools, upstreamChecks, upstreamPools } from './readiness.js';
import { COMPAT_PREFIX, LEGACY_ROUTES, PROXY_ROUTES, SECOND_SEED_PATHS, type LegacyRoute } from './routes.js';
import { UpstreamProxy, type Upstream } from './upstream-proxy.js';

export interface GatewayAppOptions {
  logStream?: DestinationStream;
}

/**
 * The same on every answer, so written as constants rather than computed per request by a
 * middleware. Answers are JSON and never framed; the docs page replaces the policy with its own.
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none';frame-ancestors 'none'",
  'cross-origin-resource-policy': 'same-site',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
} as const;

// OPTIONS is left to CORS preflight handling at the gateway; upstreams never see it.
const PROXIED_METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** The public port's socket limits, from the operator's settings. */
function edgeLimits(config: Config): Partial<ServerLimits> {
  const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, maxConnections } = config.gateway;
  return {
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs,
    maxConnections,
    maxHeaderBytes: EDGE_MAX_HEADER_BYTES,
  };
}

export async function buildApp(config: Config, options: GatewayAppOptions = {}): Promise<FastifyInstance> {
  const pools = upstreamPools(config, config.upstreamTimeoutMs);
  const app = createServiceApp({
    service: 'gateway',
    config,
    quietSuccess: true,
    logStream: options.logStream,
    // Metrics and the detailed readiness report are on the operations port (operations.ts).
    exposure: 'public',
    trustProxy: config.gateway.trustedProxies.length > 0 ? trustingProxies(config.gateway.trustedProxies) : false,
    limits: edgeLimits(config),
    readiness: upstreamChecks(pools),
  });

  // Bodies pass through untouched; the upstream parses and validates them (and answers 400/415).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.addHook('onRequest', async (_request, reply) => {
    void reply.headers(SECURITY_HEADERS);
  });
  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['content-type', 'authorization', 'x-request-id', 'x-csrftoken'],
      exposedHeaders: ['x-request-id', 'retry-after'],
      maxAge: 600,
      // An OPTIONS that is no preflight (no Access-Control-Request-Method) is answered as one, not
      // refused with the plugin's plain-text 400, which is no problem+json.
      strictPreflight: false,
    });
  }
  await app.register(cookie);
  const inOrder = (pool: UpstreamPool) => () => pool.inServiceFirst().map((i) => i.base);
  await registerDocs(app, new DocsCache([inOrder(pools.auth), inOrder(pools.referral)], 2000, config.legacyPaths));

  rememberPools(app, pools);
  pools.auth.setLog(app.log);
  pools.referral.setLog(app.log);
  pools.auth.start();
  pools.referral.start();
  const proxy = new UpstreamProxy(pools, config.upstreamTimeoutMs, config.gateway.trustedProxies.length > 0);
  app.addHook('onClose', () => proxy.close());
  beforeDrainCut(app, () => proxy.callOffAll());
  const legacyCookie = { secure: config.isProduction, maxAgeSeconds: config.tokens.accessTtlSeconds };

  const forward =
    (upstream: Upstream, legacy?: LegacyRoute) => async (request: FastifyRequest, reply: FastifyReply) => {
      if (!legacy) return proxy.forward(upstream, request, reply, { path: request.url });
      const queryAt = request.url.indexOf('?');
      return proxy.forward(upstream, request, reply, {
        path: `${legacy.target}${queryAt >= 0 ? request.url.slice(queryAt) : ''}`,
        headers: legacy.cookieSession ? withLegacyAuthorization(request) : {},
        onAnswer: legacy.setsCookie
          ? (status, body, answer) => status === 200 && setLegacyCookie(answer, body, legacyCookie)
          : undefined,
      });
    };

  for (const route of PROXY_ROUTES) {
    for (const path of route.paths)
      app.route({ method: [...(route.methods ?? PROXIED_METHODS)], url: path, handler: forward(route.upstream) });
  }
  const notFound = async () => {
    throw new AppError('not_found', 'No such resource.');
  };
  if (config.legacyPaths) {
    for (const legacy of LEGACY_ROUTES) {
      app.route({ method: legacy.method, url: legacy.path, handler: forward(legacy.upstream, legacy) });
    }
  } else {
    // These lie under the proxied prefixes, so without a route of their own they would be
    // forwarded. A static route wins over the prefix's wildcard (and covers the trailing slash).
    for (const path of SECOND_SEED_PATHS) app.all(path, notFound);
  }
  // Internal routes exist only between services, and compat routes only for the gateway's own
  // legacy routes: neither is ever forwarded as it is.
  app.all('/internal/*', notFound);
  app.all(`${COMPAT_PREFIX}*`, notFound);

  return app;
}
