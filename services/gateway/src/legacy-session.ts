import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { AppError } from '@refstack/shared/contracts';

/**
 * The first version's clients kept their login in a cookie (its Postman collection sends no
 * Authorization header, only `X-CSRFTOKEN`). On the legacy paths only, a successful verify also sets
 * the access token as an HttpOnly, SameSite=Strict cookie, and the legacy profile routes accept it
 * when no Authorization header is sent. A state-changing request authenticated by the cookie must
 * carry an `X-CSRFTOKEN` header, which a cross-site form cannot add.
 */
export const LEGACY_COOKIE = 'refstack_access';

export interface LegacySessionOptions {
  secure: boolean;
  maxAgeSeconds: number;
}

export function setLegacyCookie(reply: FastifyReply, body: Buffer, options: LegacySessionOptions): void {
  let access: unknown;
  try {
    // The compat verify answers in the first seed's shape, which auth owns: the token is taken
    // from our own place for it (`tokens.access`) or, failing that, a flat `access`.
    const answer = JSON.parse(body.toString('utf8')) as { tokens?: { access?: unknown }; access?: unknown };
    access = answer.tokens?.access ?? answer.access;
  } catch {
    return;
  }
  if (typeof access !== 'string') return;
  void reply.setCookie(LEGACY_COOKIE, access, {
    httpOnly: true,
    sameSite: 'strict',
    secure: options.secure,
    path: '/api/',
    maxAge: options.maxAgeSeconds,
  });
}

// A compact JWS: three base64url parts. Anything else (a decoded `%0A`, a character outside
// Latin-1) could not even be sent on as a header, and is no credential anyway.
const COMPACT_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Upstream headers for a legacy request: the cookie becomes a bearer token when none was sent. */
export function withLegacyAuthorization(request: FastifyRequest): IncomingHttpHeaders {
  const cookie = request.cookies[LEGACY_COOKIE];
  if (request.headers.authorization || !cookie) return {};
  if (!COMPACT_JWT.test(cookie))
    throw new AppError('unauthorized', 'The login cookie is not a valid token; sign in again.');
  const unsafe = request.method !== 'GET' && request.method !== 'HEAD';
  if (unsafe && !request.headers['x-csrftoken']) {
    throw new AppError('forbidden', 'A cookie-authenticated change needs the X-CSRFTOKEN header.');
  }
  return { authorization: `Bearer ${cookie}` };
}
