import type { HTTPMethods } from 'fastify';
import type { Upstream } from './upstream-proxy.js';

/** Which upstream serves a public path prefix. Anything not listed here is 404 at the gateway. */
export interface ProxyRoute {
  upstream: Upstream;
  /** Fastify route pattern(s) at the gateway. */
  paths: readonly string[];
  /** Only these methods (default: every proxied method). */
  methods?: readonly HTTPMethods[];
}

export const PROXY_ROUTES: readonly ProxyRoute[] = [
  { upstream: 'auth', paths: ['/api/v1/auth/*'] },
  { upstream: 'auth', paths: ['/.well-known/*'] },
  // SMS providers post delivery receipts here; auth checks each provider's signature.
  { upstream: 'auth', paths: ['/webhooks/sms/*'] },
  // An account's life (phone change, deletion, export) is run by auth, which owns codes and sessions.
  { upstream: 'auth', paths: ['/api/v1/profile/phone', '/api/v1/profile/export'] },
  { upstream: 'auth', paths: ['/api/v1/profile'], methods: ['DELETE'] },
  { upstream: 'referral', paths: ['/api/v1/profile'], methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH'] },
  { upstream: 'referral', paths: ['/api/v1/profile/*'] },
  { upstream: 'referral', paths: ['/api/v1/users', '/api/v1/users/*'] },
];

/**
 * The first seed's paths, kept for its clients: same method, body and answer (its integer ids, its
 * texts), served by the compat routes auth and referral keep for it.
 */
export interface LegacyRoute {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  upstream: Upstream;
  /** The upstream's compat route (under COMPAT_PREFIX, which the public port never serves). */
  target: string;
  /**
   * Authenticated by the legacy login cookie. The login paths ignore it, so that a client with a
   * stale or broken cookie can still sign in (and get a good one).
   */
  cookieSession: boolean;
  /** A successful answer carries the access token, which becomes the legacy login cookie. */
  setsCookie?: boolean;
  /** The /api/v1 route new clients use instead, named in the docs. */
  successor: string;
}

/** Upstream routes that only the gateway may call, on behalf of the seeds' paths. */
export const COMPAT_PREFIX = '/compat/';

export const LEGACY_ROUTES: readonly LegacyRoute[] = [
  {
    method: 'POST',
    path: '/api/auth/send-code/',
    upstream: 'auth',
    target: '/compat/seed1/auth/send-code',
    cookieSession: false,
    successor: 'POST /api/v1/auth/send-code',
  },
  {
    method: 'POST',
    path: '/api/auth/verify/',
    upstream: 'auth',
    target: '/compat/seed1/auth/verify',
    cookieSession: false,
    setsCookie: true,
    successor: 'POST /api/v1/auth/verify',
  },
  {
    method: 'GET',
    path: '/api/profile/',
    upstream: 'referral',
    target: '/compat/seed1/profile',
    cookieSession: true,
    successor: 'GET /api/v1/profile',
  },
  {
    method: 'PUT',
    path: '/api/profile/set-invite/',
    upstream: 'referral',
    target: '/compat/seed1/profile/set-invite',
    cookieSession: true,
    successor: 'PUT /api/v1/profile/invite',
  },
];

/**
 * The second seed's paths. They live under the proxied prefixes and are served by auth and
 * referral themselves; the gateway only needs them to answer 404 (and leave them out of the docs)
 * when LEGACY_PATHS=off. Each also matches with a trailing slash.
 */
export const SECOND_SEED_PATHS: readonly string[] = [
  '/api/v1/auth/send_code',
  '/api/v1/auth/jwt/get_by_phone',
  '/api/v1/auth/jwt/refresh',
  '/api/v1/auth/jwt/verify',
  '/api/v1/users/current_user',
];

/** Whether a documented path is one of the second seed's (with or without its trailing slash). */
export function isSecondSeedPath(path: string): boolean {
  return SECOND_SEED_PATHS.includes(path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path);
}
