import t from 'tap';
import { ConfigError, ENV_VARIABLES, loadConfig } from '../src/config.js';

t.test('defaults follow the contract', async (t) => {
  const config = loadConfig({});
  t.equal(config.env, 'development');
  t.equal(config.host, '127.0.0.1');
  t.same(config.ports, { gateway: 8080, auth: 3001, referral: 3002 });
  t.equal(config.databaseUrl, 'postgres://postgres@127.0.0.1:5432/referral');
  t.equal(config.redisUrl, 'redis://127.0.0.1:6379');
  t.same(config.phone, { defaultRegion: 'RU', allowedCountries: ['RU'] });
  t.match(config.otp, { length: 6, ttlSeconds: 300, maxAttempts: 5, resendSeconds: 60, maxSendsPerHour: 5, maxFailedPerDay: 20, phoneFailedPerDay: 100 });
  t.equal(config.sendCodeIpPerHour, 30);
  t.equal(config.verifyIpFailedPerHour, 30);
  t.match(config.tokens, { accessTtlSeconds: 900, refreshTtlSeconds: 2_592_000 });
  t.equal(config.urls.auth, 'http://127.0.0.1:3001');
  t.equal(config.urls.jwks, 'http://127.0.0.1:3001/.well-known/jwks.json');
});

t.test('JWKS_REFRESH_SECONDS: 60 by default, 1 to 86400', async (t) => {
  t.equal(loadConfig({}).jwksRefreshSeconds, 60);
  t.equal(loadConfig({ JWKS_REFRESH_SECONDS: '5' }).jwksRefreshSeconds, 5);
  for (const value of ['0', '86401', 'soon']) t.throws(() => loadConfig({ JWKS_REFRESH_SECONDS: value }), { message: /JWKS_REFRESH_SECONDS/ }, value);
});

t.test('env overrides are converted and validated', async (t) => {
  const config = loadConfig({ AUTH_PORT: '4001', OTP_LENGTH: '8', ALLOWED_COUNTRIES: 'RU,KZ', AUTH_URL: 'http://auth:3001/' });
  t.equal(config.ports.auth, 4001);
  t.equal(config.otp.length, 8);
  t.same(config.phone.allowedCountries, ['RU', 'KZ']);
  t.equal(config.urls.auth, 'http://auth:3001');
  t.equal(loadConfig({ ALLOWED_COUNTRIES: '*' }).phone.allowedCountries, '*');
  t.equal(loadConfig({ OTP_LENGTH: '' }).otp.length, 6, 'an empty variable counts as unset');
});

t.test('invalid values are refused with the variable named', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ AUTH_PORT: 'abc' }, /AUTH_PORT/],
    [{ AUTH_PORT: '70000' }, /AUTH_PORT/],
    [{ OTP_LENGTH: '3' }, /OTP_LENGTH/],
    [{ OTP_LENGTH: '9' }, /OTP_LENGTH/],
    [{ NODE_ENV: 'staging' }, /NODE_ENV/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ ALLOWED_COUNTRIES: 'russia' }, /ALLOWED_COUNTRIES/],
  ];
  for (const [env, pattern] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message: pattern }, JSON.stringify(env));
  }
});

t.test('production refuses missing or default secrets, naming each', async (t) => {
  const required = ['INTERNAL_TOKEN', 'OTP_HMAC_SECRET', 'JWT_PRIVATE_KEY'] as const;
  const error = t.throws(() => loadConfig({ NODE_ENV: 'production' }, { requiredSecrets: required })) as ConfigError;
  t.ok(error instanceof ConfigError);
  for (const name of required) t.match(error.message, name);

  t.throws(
    () => loadConfig({ NODE_ENV: 'production', INTERNAL_TOKEN: 'dev-internal-token-do-not-use-in-production' }, { requiredSecrets: ['INTERNAL_TOKEN'] }),
    { message: /INTERNAL_TOKEN: must not be the development default/ },
  );
  t.throws(() => loadConfig({ NODE_ENV: 'production', INTERNAL_TOKEN: 'short' }, { requiredSecrets: ['INTERNAL_TOKEN'] }), {
    message: /INTERNAL_TOKEN: must be at least 32/,
  });
  const ok = loadConfig({ NODE_ENV: 'production', INTERNAL_TOKEN: 'x'.repeat(40) }, { requiredSecrets: ['INTERNAL_TOKEN'] });
  t.equal(ok.internalToken, 'x'.repeat(40));
  t.ok(ok.isProduction);
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production' }), 'a process that needs no secret starts');
});

t.test('secret values never appear in validation messages', async (t) => {
  const error = t.throws(() => loadConfig({ NODE_ENV: 'production', INTERNAL_TOKEN: 'hunter2' }, { requiredSecrets: ['INTERNAL_TOKEN'] })) as Error;
  t.notMatch(error.message, 'hunter2');
});

t.test('the list of known variables covers the contract', async (t) => {
  for (const name of ['GATEWAY_PORT', 'AUTH_PORT', 'REFERRAL_PORT', 'DATABASE_URL', 'REDIS_URL', 'HOST', 'DEFAULT_REGION', 'ALLOWED_COUNTRIES', 'OTP_LENGTH', 'OTP_TTL_SECONDS', 'OTP_MAX_ATTEMPTS', 'OTP_RESEND_SECONDS', 'OTP_MAX_SENDS_PER_HOUR', 'OTP_MAX_FAILED_PER_DAY', 'SEND_CODE_IP_PER_HOUR', 'VERIFY_IP_FAILED_PER_HOUR', 'OTP_PHONE_FAILED_PER_DAY', 'OTP_ALLOW_SHORT', 'REFERRAL_TIMEOUT_MS', 'ACCESS_TOKEN_TTL_SECONDS', 'REFRESH_TOKEN_TTL_SECONDS', 'INTERNAL_TOKEN', 'TRUSTED_PROXIES', 'CORS_ORIGINS']) {
    t.ok(ENV_VARIABLES.includes(name), name);
  }
});

t.test('production refuses codes shorter than 6 digits unless OTP_ALLOW_SHORT=true, saying why', async (t) => {
  const secrets = { NODE_ENV: 'production', OTP_HMAC_SECRET: 'x'.repeat(40), OTP_LENGTH: '4' };
  const error = t.throws(() => loadConfig(secrets, { issuesOtps: true })) as ConfigError;
  t.match(error.message, /OTP_LENGTH: 4-digit codes are refused in production: 5 guesses break one code in 2000/);
  t.match(error.message, /OTP_LENGTH=6 or more, or OTP_ALLOW_SHORT=true/);
  t.equal(loadConfig({ ...secrets, OTP_LENGTH: '6' }, { issuesOtps: true }).otp.length, 6);
  t.equal(loadConfig({ ...secrets, OTP_ALLOW_SHORT: 'true' }, { issuesOtps: true }).otp.length, 4, 'the operator may accept the risk');
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production', OTP_LENGTH: '4' }), 'a process that issues no codes does not care');
  t.equal(loadConfig({ NODE_ENV: 'production', OTP_HMAC_SECRET: 'x'.repeat(40) }, { issuesOtps: true }).otp.length, 6, 'the default passes');
  t.equal(loadConfig({ OTP_LENGTH: '4' }, { issuesOtps: true }).otp.length, 4, 'development keeps short codes');
});

t.test('in production the gateway waits longer than a verify can take in auth', async (t) => {
  const production = { NODE_ENV: 'production' };
  t.throws(() => loadConfig({ ...production, UPSTREAM_TIMEOUT_MS: '9000' }), { message: /UPSTREAM_TIMEOUT_MS: must exceed REFERRAL_TIMEOUT_MS \+ 5000 ms \(10000\)/ });
  t.throws(() => loadConfig({ ...production, REFERRAL_TIMEOUT_MS: '8000' }), { message: /UPSTREAM_TIMEOUT_MS/ }, 'a longer referral timeout needs a longer gateway timeout');
  t.equal(loadConfig({ ...production, REFERRAL_TIMEOUT_MS: '8000', UPSTREAM_TIMEOUT_MS: '14000' }).referralTimeoutMs, 8000);
  t.match(loadConfig(production), { upstreamTimeoutMs: 12_000, referralTimeoutMs: 5000 }, 'the defaults agree');
  t.equal(loadConfig({ UPSTREAM_TIMEOUT_MS: '300' }).upstreamTimeoutMs, 300, 'a test may shorten it to see it fire');
});
