import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { AppError } from '@refstack/shared/contracts';
import { OPENAPI_PATH, quietRouteLogLevel } from '@refstack/shared/platform';
import { mergeOpenApi, type OpenApiDocument } from './openapi-merge.js';
import { registerRedoc, SCHEMA_PATH } from './redoc.js';
import { LEGACY_ROUTES } from './routes.js';

const REFRESH_MS = 60_000;

/**
 * The merged OpenAPI document, fetched from the services themselves (never hand-copied) and kept
 * for a minute: from each service's first instance that answers, those in service first. Once
 * there is one, it is served at once and refreshed behind the readers' backs: when a service is
 * away, the last good document is served without anyone waiting for the service's timeout.
 */
export class DocsCache {
  private merged: OpenApiDocument | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;

  constructor(
    /** Per service, its instances in the order to ask them. */
    private readonly services: ReadonlyArray<() => readonly string[]>,
    private readonly timeoutMs: number,
    /** LEGACY_PATHS: whether the seeds' paths are served, and so documented. */
    private readonly seedPaths = true,
    private readonly refreshMs = REFRESH_MS,
  ) {}

  current(): OpenApiDocument {
    if (!this.merged)
      throw new AppError('service_unavailable', 'The API description is not available yet; try again shortly.', {
        retryAfter: 1,
      });
    return this.merged;
  }

  async refreshIfStale(): Promise<void> {
    if (Date.now() - this.fetchedAt < this.refreshMs && this.merged) return;
    this.inflight ??= this.fetchAll()
      .catch((error: unknown) => {
        if (!this.merged) throw error;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    // Only a reader with nothing to be served waits for the services.
    if (!this.merged) return this.inflight;
  }

  private async fetchAll(): Promise<void> {
    const specs = await Promise.all(
      this.services.map(async (instances) => {
        let failure: unknown = new Error('no instance');
        for (const base of instances()) {
          try {
            return await this.fetchOne(base);
          } catch (error) {
            failure = error;
          }
        }
        throw failure;
      }),
    );
    this.merged = mergeOpenApi(specs, { legacy: LEGACY_ROUTES, seedPaths: this.seedPaths });
    this.fetchedAt = Date.now();
  }

  private async fetchOne(base: string): Promise<OpenApiDocument> {
    // One deadline, the connection included, so that a silent instance leaves time for the next.
    const res = await request(`${base}${OPENAPI_PATH}`, { signal: AbortSignal.timeout(this.timeoutMs) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`${base} answered ${res.statusCode}`);
    }
    return (await res.body.json()) as OpenApiDocument;
  }
}

async function refreshed(cache: DocsCache): Promise<OpenApiDocument> {
  await cache.refreshIfStale().catch((error: unknown) => {
    throw new AppError(
      'service_unavailable',
      'The API description cannot be fetched from the services right now.',
      { retryAfter: 1 },
      error,
    );
  });
  return cache.current();
}

/**
 * `GET /docs` (Swagger UI) and `GET /docs/json` over the merged document; the same document at
 * `GET /api/v1/schema/` and ReDoc over it at `GET /api/v1/redoc/` and `GET /redoc`.
 */
export async function registerDocs(app: FastifyInstance, cache: DocsCache): Promise<void> {
  // Static mode with an empty document: every answer is replaced by the merged one below.
  await app.register(swagger, {
    mode: 'static',
    specification: { document: { openapi: '3.1.0', info: { title: 'Refstack API', version: '1.0.0' }, paths: {} } },
  });
  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/docs/json') || request.url.startsWith('/docs/yaml')) await refreshed(cache);
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    transformSpecificationClone: false,
    transformSpecification: () => cache.current() as unknown as Record<string, unknown>,
    uiConfig: { docExpansion: 'list', deepLinking: true, tryItOutEnabled: false },
    logLevel: quietRouteLogLevel(app.log.level),
  });
  app.get(SCHEMA_PATH, async () => refreshed(cache));
  registerRedoc(app);
}
