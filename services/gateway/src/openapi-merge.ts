import { isPublicPath } from '@refstack/shared/platform';
import type { LegacyRoute } from './routes.js';

// A loose view of OpenAPI 3.1: only the parts the merge reads or writes are typed.
export interface OpenApiDocument {
  openapi: string;
  info: Record<string, unknown>;
  paths?: Record<string, Record<string, OperationObject>>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
  tags?: Array<{ name: string; description?: string }>;
  [key: string]: unknown;
}

export interface OperationObject {
  summary?: string;
  description?: string;
  operationId?: string;
  deprecated?: boolean;
  tags?: string[];
  responses?: Record<string, unknown>;
  [key: string]: unknown;
}

const TAGS = [
  { name: 'auth', description: 'Phone login with one-time SMS codes; tokens and sessions.' },
  { name: 'profile', description: 'The signed-in user: profile, invite activation, invitees.' },
  { name: 'users', description: 'Other users: public cards; listing and search for admins.' },
  { name: 'legacy', description: "The first version's paths, kept for its clients. Use the /api/v1 routes instead." },
];

const clone = <T>(value: T): T => structuredClone(value);

/**
 * One document for the whole public API: the services' own specs side by side, only public paths,
 * plus the first version's paths as deprecated copies of the operations they are served by.
 */
export function mergeOpenApi(specs: readonly OpenApiDocument[], legacy: readonly LegacyRoute[]): OpenApiDocument {
  const paths: Record<string, Record<string, OperationObject>> = {};
  const schemas: Record<string, unknown> = {};
  const securitySchemes: Record<string, unknown> = {};
  for (const spec of specs) {
    for (const [path, item] of Object.entries(spec.paths ?? {})) {
      if (!isPublicPath(path)) continue;
      paths[path] = { ...paths[path], ...clone(item) };
    }
    Object.assign(schemas, clone(spec.components?.schemas ?? {}));
    Object.assign(securitySchemes, clone(spec.components?.securitySchemes ?? {}));
  }
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const camel = path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ?? '').toUpperCase());
      operation.operationId ??= `${method}${camel}`;
    }
  }
  for (const route of legacy) {
    const method = route.method.toLowerCase();
    const served = paths[route.target]?.[method];
    if (!served) continue;
    const copy = clone(served);
    copy.deprecated = true;
    copy.tags = ['legacy'];
    copy.operationId = `legacy${copy.operationId?.replace(/^./, (c) => c.toUpperCase()) ?? ''}`;
    copy.summary = `${copy.summary ?? ''} (first version's path)`.trim();
    copy.description =
      `Served as \`${route.method} ${route.target}\`, with the same body and answer. ${copy.description ?? ''}`.trim();
    paths[route.path] = { ...paths[route.path], [method]: copy };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Refstack API',
      version: '1.0.0',
      description:
        'Phone login with one-time SMS codes, and invite codes. Errors are RFC 9457 problem details ' +
        '(`application/problem+json`) with a stable `code`; every 429 carries `Retry-After`; every ' +
        'response carries `x-request-id`.',
    },
    tags: TAGS,
    paths,
    components: { schemas, securitySchemes },
  };
}
