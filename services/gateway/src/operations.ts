import type { FastifyInstance } from 'fastify';
import { type Config } from '@refstack/shared/contracts';
import { createOperationsApp } from '@refstack/shared/platform';
import type { GatewayAppOptions } from './app.js';
import { poolsOf, upstreamChecks } from './readiness.js';

/**
 * The gateway's internal port (GATEWAY_METRICS_PORT): `/metrics` of the public app and the
 * readiness report with each service's own checks, neither of which clients may see.
 */
export function buildOperationsApp(
  app: FastifyInstance,
  config: Config,
  options: GatewayAppOptions = {},
): FastifyInstance {
  return createOperationsApp(app, {
    service: 'gateway',
    config,
    quietSuccess: true,
    logStream: options.logStream,
    readiness: upstreamChecks(poolsOf(app)),
  });
}
