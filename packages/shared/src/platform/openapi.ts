import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { quietRouteLogLevel } from './logger.js';

export const OPENAPI_PATH = '/openapi.json';

/**
 * Only these paths are public (the API, the keys, and the providers' delivery receipts); health,
 * metrics, internal routes and the spec itself stay out.
 */
export function isPublicPath(url: string): boolean {
  return url.startsWith('/api/') || url.startsWith('/.well-known/') || url.startsWith('/webhooks/');
}

/**
 * What a service's document holds: its public paths, and the `/compat/` routes the gateway publishes
 * under the seeds' own paths (and never serves under their own).
 */
function isDocumented(url: string): boolean {
  return isPublicPath(url) || url.startsWith('/compat/');
}

/**
 * Collects the route schemas of a service into an OpenAPI 3 document, served (unlisted) at
 * `/openapi.json` for the gateway to merge. Register before the routes.
 */
export async function registerOpenApi(
  app: FastifyInstance,
  info: { title: string; description: string },
): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { ...info, version: '1.0.0' },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
    transform: ({ schema, url }) => ({ schema: isDocumented(url) ? schema : { ...schema, hide: true }, url }),
  });
  app.get(OPENAPI_PATH, { logLevel: quietRouteLogLevel(app.log.level) }, async () => app.swagger());
}
