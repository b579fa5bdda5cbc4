import type { Upstream } from './upstream-proxy.js';

/** Which upstream serves a public path prefix. Anything not listed here is 404 at the gateway. */
export interface ProxyRoute {
  upstream: Upstream;
  /** Fastify route pattern(s) at the gateway. */
  paths: readonly string[];
}

export const PROXY_ROUTES: readonly ProxyRoute[] = [
  { upstream: 'auth', paths: ['/api/v1/auth/*'] },
  { upstream: 'auth', paths: ['/.well-known/*'] },
  { upstream: 'referral', paths: ['/api/v1/profile', '/api/v1/profile/*'] },
  { upstream: 'referral', paths: ['/api/v1/users', '/api/v1/users/*'] },
];

/** The first seed's paths, kept for its clients: same method, body and response, new home. */
export interface LegacyRoute {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  upstream: Upstream;
  target: string;
  /**
   * Authenticated by the legacy login cookie. The login paths ignore it, so that a client with a
   * stale or broken cookie can still sign in (and get a good one).
   */
  cookieSession: boolean;
}

export const LEGACY_ROUTES: readonly LegacyRoute[] = [
  {
    method: 'POST',
    path: '/api/auth/send-code/',
    upstream: 'auth',
    target: '/api/v1/auth/send-code',
    cookieSession: false,
  },
  { method: 'POST', path: '/api/auth/verify/', upstream: 'auth', target: '/api/v1/auth/verify', cookieSession: false },
  { method: 'GET', path: '/api/profile/', upstream: 'referral', target: '/api/v1/profile', cookieSession: true },
  {
    method: 'PUT',
    path: '/api/profile/set-invite/',
    upstream: 'referral',
    target: '/api/v1/profile/invite',
    cookieSession: true,
  },
];
