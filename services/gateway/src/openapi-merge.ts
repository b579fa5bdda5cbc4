import { isPublicPath } from '@refstack/shared/platform';
import { LEGACY_COOKIE } from './legacy-session.js';
import { COMPAT_PREFIX, isSecondSeedPath, type LegacyRoute } from './routes.js';

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
  {
    name: 'webhooks',
    description: 'Delivery receipts that SMS providers post; each is refused unless its provider signed it.',
  },
  { name: 'legacy', description: "The first seed's paths, kept for its clients. Use the /api/v1 routes instead." },
];

const clone = <T>(value: T): T => structuredClone(value);

export interface MergeOptions {
  /** The first seed's public paths and the compat operations that serve them. */
  legacy: readonly LegacyRoute[];
  /** LEGACY_PATHS: false leaves out the first seed's paths and the second seed's. */
  seedPaths: boolean;
}

/** The legacy login cookie, documented where the first seed's profile paths accept it. */
const LEGACY_COOKIE_SCHEME = { type: 'apiKey', in: 'cookie', name: LEGACY_COOKIE };

const camelCase = (text: string) =>
  text.replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ?? '').toUpperCase());

/** A documented operation at either spelling of a path (services may document the trailing slash). */
function operationAt(
  paths: Record<string, Record<string, OperationObject>>,
  path: string,
  method: string,
): OperationObject | undefined {
  const other = path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
  return paths[path]?.[method] ?? paths[other]?.[method];
}

/**
 * One document for the whole public API: the services' own specs side by side, only public paths.
 * The first seed's paths are documented by the compat operations that serve them, under the public
 * path; the compat paths themselves are not public.
 */
export function mergeOpenApi(specs: readonly OpenApiDocument[], options: MergeOptions): OpenApiDocument {
  const paths: Record<string, Record<string, OperationObject>> = {};
  const compat: Record<string, Record<string, OperationObject>> = {};
  const schemas: Record<string, unknown> = {};
  const securitySchemes: Record<string, unknown> = {};
  const serviceTags = new Map<string, { name: string; description?: string }>();
  for (const spec of specs) {
    for (const [path, item] of Object.entries(spec.paths ?? {})) {
      if (path.startsWith(COMPAT_PREFIX)) compat[path] = { ...compat[path], ...clone(item) };
      else if (!isPublicPath(path)) continue;
      else if (!options.seedPaths && isSecondSeedPath(path)) continue;
      else paths[path] = { ...paths[path], ...clone(item) };
    }
    Object.assign(schemas, clone(spec.components?.schemas ?? {}));
    Object.assign(securitySchemes, clone(spec.components?.securitySchemes ?? {}));
    for (const tag of spec.tags ?? []) if (!serviceTags.has(tag.name)) serviceTags.set(tag.name, clone(tag));
  }
  // Ids made from paths can collide (`send-code` and the second seed's `send_code`): a later one
  // gets a number.
  const ids = new Set<string>();
  const unique = (id: string) => {
    let candidate = id;
    for (let n = 2; ids.has(candidate); n++) candidate = `${id}${n}`;
    ids.add(candidate);
    return candidate;
  };
  for (const item of Object.values(paths)) {
    for (const operation of Object.values(item)) if (operation.operationId) ids.add(operation.operationId);
  }
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(item)) {
      operation.operationId ??= unique(`${method}${camelCase(path)}`);
    }
  }
  if (options.seedPaths) {
    for (const route of options.legacy) {
      const method = route.method.toLowerCase();
      const served = operationAt(compat, route.target, method);
      if (!served) continue;
      const operation = clone(served);
      operation.deprecated = true;
      operation.tags = ['legacy'];
      operation.operationId = unique(`${method}${camelCase(route.path)}`);
      operation.summary = `${operation.summary ?? ''} (first seed's path)`.trim();
      operation.description = [
        `The first seed's path, kept for its clients, with its request and answer. New clients use ` +
          `\`${route.successor}\`.`,
        route.cookieSession
          ? `Accepts the login cookie \`${LEGACY_COOKIE}\` (set by \`POST /api/auth/verify/\`) instead of ` +
            'the Authorization header; a change made with the cookie needs an `X-CSRFTOKEN` header.'
          : '',
        operation.description ?? '',
      ]
        .filter(Boolean)
        .join('\n\n');
      if (route.cookieSession && Array.isArray(operation['security']) && operation['security'].length > 0) {
        operation['security'] = [...(operation['security'] as unknown[]), { legacyCookie: [] }];
        securitySchemes['legacyCookie'] = LEGACY_COOKIE_SCHEME;
      }
      paths[route.path] = { ...paths[route.path], [method]: operation };
    }
  }
  const used = new Set(Object.values(paths).flatMap((item) => Object.values(item).flatMap((op) => op.tags ?? [])));
  const tags = [...TAGS, ...[...serviceTags.values()].filter((tag) => !TAGS.some((known) => known.name === tag.name))];
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
    // Relative: the document describes the gateway it was fetched from, whatever its address.
    servers: [{ url: '/', description: 'This gateway' }],
    tags: tags.filter((tag) => used.has(tag.name)),
    paths,
    components: { schemas, securitySchemes },
  };
}
