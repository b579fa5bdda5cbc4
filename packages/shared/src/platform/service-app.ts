import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { pino, type DestinationStream } from 'pino';
import type { Registry } from 'prom-client';
import { answerClientError, answerUnroutable } from './client-errors.js';
import type { Config } from '../contracts/config.js';
import { isDraining } from './drain.js';
import { installProblemHandlers, sendProblem } from './error-handler.js';
import { registerHealthRoutes, type HealthCheck } from './health.js';
import { lazyChildLogger } from './lazy-child-logger.js';
import { logDestination, loggerOptions } from './logger.js';
import { collectMetrics, serveMetrics } from './metrics.js';
import { REQUEST_ID_HEADER } from '../contracts/headers.js';
import { requestIdFrom } from './request-id.js';
import { closeIdleNearCap, defaultServerLimits, serverLimitOptions, type ServerLimits } from './server-limits.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

export interface ServiceAppOptions {
  service: string;
  config: Config;
  /** Readiness checks by name (`postgres`, `redis`, upstreams). */
  readiness?: Record<string, HealthCheck>;
  /** Where log lines go; defaults to stdout. Tests pass a stream to read them. */
  logStream?: DestinationStream;
  /**
   * Log answered requests below 500 at debug instead of info. For the gateway: the service behind
   * it logs the same request under the same request id, so one line per request is enough.
   */
  quietSuccess?: boolean;
  /** Proxies whose `X-Forwarded-For` is believed (addresses or CIDRs). */
  trustProxy?: FastifyServerOptions['trustProxy'];
  /** Overrides of the listening socket's timeouts and connection cap (see `ServerLimits`). */
  limits?: Partial<ServerLimits>;
  /**
   * `public` for a port clients reach (the gateway's): it serves no `/metrics`, and its
   * `/health/ready` says only up or down per check. Both in full are then served by
   * `createOperationsApp` on an internal port.
   */
  exposure?: 'internal' | 'public';
}

// Each app's metrics, for the operations app of a public one to serve.
const registries = new WeakMap<FastifyInstance, Registry>();

/**
 * A Fastify instance with everything every service shares: logging with request ids and redaction,
 * problem+json errors, body limit, socket limits, trailing-slash tolerance, health and metrics.
 */
export function createServiceApp(options: ServiceAppOptions): FastifyInstance {
  const { service } = options;
  const app = createBaseApp(options);
  const registry = collectMetrics(app, service);
  registries.set(app, registry);
  if (options.exposure === 'public') {
    registerHealthRoutes(app, service, options.readiness ?? {}, { details: false });
  } else {
    registerHealthRoutes(app, service, options.readiness ?? {});
    serveMetrics(app, registry);
  }
  return app;
}

/** The Prometheus registry of an app made by createServiceApp, for a service's own metrics. */
export function metricsRegistry(app: FastifyInstance): Registry {
  const registry = registries.get(app);
  if (!registry) throw new Error('metricsRegistry needs an app made by createServiceApp');
  return registry;
}

/**
 * The internal port of a public app: its `/metrics` and its readiness report in full (which
 * draining follows the public app's). Closed when the public app closes.
 */
export function createOperationsApp(
  publicApp: FastifyInstance,
  options: Omit<ServiceAppOptions, 'exposure' | 'trustProxy'>,
): FastifyInstance {
  const registry = registries.get(publicApp);
  if (!registry) throw new Error('createOperationsApp needs an app made by createServiceApp');
  const app = createBaseApp(options);
  registerHealthRoutes(app, options.service, options.readiness ?? {}, { drainingOf: publicApp });
  serveMetrics(app, registry);
  publicApp.addHook('onClose', () => app.close());
  return app;
}

/**
 * A Fastify instance with everything every app shares: logging with request ids and redaction,
 * problem+json errors, body limit, socket limits, trailing-slash tolerance.
 */
function createBaseApp(options: ServiceAppOptions): FastifyInstance {
  const { service, config } = options;
  const pinoOptions = loggerOptions(service, config.logLevel);
  const stream = options.logStream ?? logDestination();
  // The access line has fixed fields and never carries a body or a header, so it skips redaction,
  // which would otherwise walk every line for the wildcard paths: the line written most often.
  const accessLog = pino({ level: config.logLevel, base: { service } }, stream);
  const limits = { ...defaultServerLimits(config), ...options.limits };
  const app = Fastify({
    ...serverLimitOptions(limits),
    clientErrorHandler: answerClientError,
    logger: { ...pinoOptions, stream },
    genReqId: requestIdFrom,
    requestIdHeader: false,
    // One line per request, written in onResponse below, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    childLoggerFactory: lazyChildLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    trustProxy: options.trustProxy ?? false,
    return503OnClosing: true,
    // Errors the router raises before any route (a malformed or oversized path) get the same
    // problem+json treatment as everything else.
    frameworkErrors: (error, _request, reply) => {
      sendProblem(reply, error);
    },
  });
  if (limits.maxConnections > 0) {
    app.server.maxConnections = limits.maxConnections;
    closeIdleNearCap(app.server, limits.maxConnections);
  }
  answerUnroutable(app.server);

  // JSON bodies are validated strictly (a number is not a string); query strings and params arrive
  // as text and are converted to the declared types.
  const bodyAjv = buildAjv(false);
  const textAjv = buildAjv('array');
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));

  app.addHook('onRequest', async (request, reply) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
  });
  // While the process shuts down, each answer closes its connection (see drainAndClose), also the
  // answer to a request that began before: kept alive, its connection would take the client's next
  // request only to answer it with Fastify's bare 503. A callback hook: no promise per answer.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (isDraining(app)) void reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', async (request, reply) => {
    const level = options.quietSuccess && reply.statusCode < 500 ? 'debug' : 'info';
    // The request's own level counts: routes that declare a higher one (the probes) stay quiet.
    const threshold = accessLog.levels.values[request.log.level] ?? Infinity;
    if (accessLog.levels.values[level]! < threshold) return;
    accessLog[level](
      {
        request_id: request.id,
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request completed',
    );
  });

  // The API speaks JSON only; without this, text/plain bodies would reach validation instead of 415.
  app.removeContentTypeParser('text/plain');
  installProblemHandlers(app);
  return app;
}

function buildAjv(coerceTypes: false | 'array'): Ajv {
  const ajv = new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats.default(ajv);
  return ajv;
}
