import type { FastifyInstance } from 'fastify';
import { isDraining } from './drain.js';
import { quietRouteLogLevel } from './logger.js';

/** A readiness probe: resolves when the dependency answers, rejects (or times out) otherwise. */
export type HealthCheck = () => Promise<unknown>;

export interface CheckResult {
  status: 'up' | 'down';
  latency_ms: number;
  error?: string;
  details?: unknown;
}

export interface HealthRouteOptions {
  /**
   * `false` on a public port: each check says only `up` or `down`, without the error messages,
   * timings and upstream reports that name internal addresses.
   */
  details?: boolean;
  /** The app whose shutdown makes readiness answer `draining` (another app, for an internal port). */
  drainingOf?: FastifyInstance;
}

/** How long readiness waits for one check; a check that fans out must settle its parts sooner. */
export const CHECK_TIMEOUT_MS = 2000;

async function runCheck(check: HealthCheck): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const details = await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    const result: CheckResult = { status: 'up', latency_ms: Math.round(performance.now() - started) };
    if (details !== undefined && details !== null) result.details = details;
    return result;
  } catch (error) {
    const message = error instanceof Error ? error.message || error.name : 'check failed';
    return { status: 'down', latency_ms: Math.round(performance.now() - started), error: message.slice(0, 200) };
  } finally {
    clearTimeout(timer);
  }
}

/** `/health/live` (the process answers) and `/health/ready` (every dependency answers). */
export function registerHealthRoutes(
  app: FastifyInstance,
  service: string,
  checks: Record<string, HealthCheck>,
  options: HealthRouteOptions = {},
): void {
  const details = options.details ?? true;
  const drainingOf = options.drainingOf ?? app;
  app.get('/health/live', { logLevel: quietRouteLogLevel(app.log.level) }, async () => ({ status: 'ok', service }));
  app.get('/health/ready', { logLevel: quietRouteLogLevel(app.log.level) }, async (_request, reply) => {
    // A load balancer stops sending new work as soon as shutdown begins.
    if (isDraining(drainingOf)) return reply.code(503).send({ status: 'draining', service, checks: {} });
    const names = Object.keys(checks);
    const results = await Promise.all(names.map((name) => runCheck(checks[name] as HealthCheck)));
    const report = Object.fromEntries(
      names.map((name, i) => [name, details ? results[i] : { status: results[i]?.status }]),
    );
    const ready = results.every((r) => r.status === 'up');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'unavailable', service, checks: report });
  });
}
