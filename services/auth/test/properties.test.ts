import t from 'tap';
import fc from 'fast-check';
import { buildAuthTestApp } from './auth-test-app.js';

const ROUTES = [
  '/api/v1/auth/send-code',
  '/api/v1/auth/verify',
  '/api/v1/auth/refresh',
  '/api/v1/auth/logout',
  '/api/v1/auth/token/verify',
  // The seeds' paths (LEGACY_PATHS is on by default).
  '/api/v1/auth/send_code/',
  '/api/v1/auth/jwt/get_by_phone/',
  '/api/v1/auth/jwt/refresh/',
  '/api/v1/auth/jwt/verify/',
  '/compat/seed1/auth/send-code',
  '/compat/seed1/auth/verify',
];

t.test('no JSON body makes an auth route answer 5xx; every refusal is problem+json', async (t) => {
  // Limits out of the way, so that every input reaches validation and the stores.
  const ctx = await buildAuthTestApp(t, {
    SEND_CODE_IP_PER_HOUR: '100000000',
    OTP_RESEND_SECONDS: '0',
    OTP_MAX_SENDS_PER_HOUR: '1000000',
    OTP_MAX_FAILED_PER_DAY: '1000000',
  });
  const bodies = fc.oneof(
    fc.json({ maxDepth: 4 }),
    fc
      .record(
        {
          phone: fc.oneof(fc.string(), fc.integer(), fc.constant('+79123456789')),
          code: fc.oneof(fc.string(), fc.integer(), fc.double()),
          invite_code: fc.oneof(fc.string(), fc.constant(null)),
          invited_by_code: fc.oneof(fc.string(), fc.constant(null), fc.integer()),
        },
        { requiredKeys: [] },
      )
      .map((o) => JSON.stringify(o)),
    fc.record({ refresh: fc.string(), token: fc.string() }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  );
  const failures: string[] = [];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ROUTES), bodies, async (url, payload) => {
      const res = await ctx.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        payload,
      });
      const ok =
        res.statusCode < 500 &&
        (res.statusCode < 400 || /^application\/problem\+json/.test(String(res.headers['content-type'])));
      if (!ok) failures.push(`${url} ${payload.slice(0, 80)} -> ${res.statusCode}`);
      return ok && !/at .*\.(ts|js):\d+/.test(res.body);
    }),
    { numRuns: 600 },
  );
  t.same(failures, []);
});
