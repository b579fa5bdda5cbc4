import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConfigError, ENV_VARIABLES, loadConfig, type SecretName } from '../../src/contracts/config.js';

t.test('defaults follow the contract', async (t) => {
  const config = loadConfig({});
  t.equal(config.env, 'development');
  t.equal(config.host, '127.0.0.1');
  t.same(config.ports, { gateway: 8080, auth: 3001, referral: 3002 });
  t.equal(config.databaseUrl, 'postgres://postgres@127.0.0.1:5432/referral');
  t.equal(config.redisUrl, 'redis://127.0.0.1:6379');
  t.same(config.phone, { defaultRegion: 'RU', allowedCountries: ['RU'] });
  t.match(config.otp, {
    length: 6,
    ttlSeconds: 300,
    maxAttempts: 5,
    resendSeconds: 60,
    maxSendsPerHour: 5,
    maxFailedPerDay: 20,
    phoneFailedPerDay: 100,
  });
  t.equal(config.sendCodeIpPerHour, 30);
  t.equal(config.verifyIpFailedPerHour, 30);
  t.match(config.tokens, { accessTtlSeconds: 900, refreshTtlSeconds: 2_592_000 });
  t.equal(config.urls.auth, 'http://127.0.0.1:3001');
  t.equal(config.urls.jwks, 'http://127.0.0.1:3001/.well-known/jwks.json');
});

t.test('every setting is read without surrounding whitespace; only whitespace means not set', async (t) => {
  const secret = randomBytes(32).toString('hex');
  const config = loadConfig({
    INTERNAL_TOKEN: ` ${secret}\n`,
    OTP_HMAC_SECRET: '\tsecond-secret ',
    AUTH_PORT: ' 4001 ',
    REDIS_KEY_PREFIX: 'padded  ',
    SMSC_PASSWORD: ' pw ',
    JWT_ISSUER: '   ',
  });
  // HTTP trims header values: a padded INTERNAL_TOKEN kept as it is would never match on referral.
  t.equal(config.internalToken, secret);
  t.equal(config.otp.hmacSecret, 'second-secret');
  t.equal(config.ports.auth, 4001);
  t.equal(config.redisKeyPrefix, 'padded');
  t.equal(config.sms.smsc.password, 'pw');
  t.equal(config.tokens.issuer, 'refstack-auth', 'whitespace alone falls back to the default');
});

t.test('JWKS_REFRESH_SECONDS: 60 by default, 1 to 86400', async (t) => {
  t.equal(loadConfig({}).jwksRefreshSeconds, 60);
  t.equal(loadConfig({ JWKS_REFRESH_SECONDS: '5' }).jwksRefreshSeconds, 5);
  for (const value of ['0', '86401', 'soon'])
    t.throws(() => loadConfig({ JWKS_REFRESH_SECONDS: value }), { message: /JWKS_REFRESH_SECONDS/ }, value);
});

t.test('env overrides are converted and validated', async (t) => {
  const config = loadConfig({
    AUTH_PORT: '4001',
    OTP_LENGTH: '8',
    ALLOWED_COUNTRIES: 'RU,KZ',
    AUTH_URL: 'http://auth:3001/',
  });
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

t.test('a whole-number setting refuses fractions, booleans and exponents instead of rounding them', async (t) => {
  // Value.Convert would read these as 0, 0, 1 and 1: no gap between codes, no ejection.
  for (const [name, value] of [
    ['OTP_RESEND_SECONDS', '0.5'],
    ['GATEWAY_EJECT_SECONDS', '0.5'],
    ['OTP_TTL_SECONDS', 'true'],
    ['SMS_PREFIX_DIGITS', '1e0'],
    ['AUTH_PORT', '-1'],
  ] as const) {
    const error = t.throws(() => loadConfig({ [name]: value }), { name: 'ConfigError' }, `${name}=${value}`);
    t.same((error as ConfigError).problems, [`${name}: must be a whole number (got "${value}")`], `${name}=${value}`);
  }
  t.match(loadConfig({ OTP_RESEND_SECONDS: '0', GATEWAY_EJECT_SECONDS: '007' }), {
    otp: { resendSeconds: 0 },
    gateway: { ejectMs: 7000 },
  });
  t.equal(loadConfig({ SMS_MIN_CONVERSION: '0.5' }).guard.minConversion, 0.5, 'a fraction where one is meant');
});

t.test('country codes must be countries libphonenumber knows, wherever they are named', async (t) => {
  // UK looks like a country code, but Britain's is GB: nothing would ever match it.
  for (const [env, problem] of [
    [{ ALLOWED_COUNTRIES: 'RU,UK' }, 'ALLOWED_COUNTRIES: UK is not a country code libphonenumber knows'],
    [{ DEFAULT_REGION: 'ZZ' }, 'DEFAULT_REGION: ZZ is not a country code libphonenumber knows'],
    [{ SMS_DAILY_BUDGET: 'RU:50000;UK:2000' }, 'SMS_DAILY_BUDGET: UK is not a country code libphonenumber knows'],
    [{ SMS_ROUTES: 'UK:smsru;*:console' }, 'SMS_ROUTES: UK is not a country code libphonenumber knows'],
  ] as const) {
    const error = t.throws(() => loadConfig(env), { name: 'ConfigError' }, JSON.stringify(env));
    t.same((error as ConfigError).problems, [problem], JSON.stringify(env));
  }
  const config = loadConfig({
    DEFAULT_REGION: 'GB',
    ALLOWED_COUNTRIES: 'GB,RU,KZ',
    SMS_DAILY_BUDGET: 'GB:2000;*:10',
    SMS_ROUTES: 'GB:twilio;*:console',
  });
  t.same(config.phone, { defaultRegion: 'GB', allowedCountries: ['GB', 'RU', 'KZ'] });
  t.same(config.guard.budget.byCountry, { GB: 2000 });
  t.same(config.sms.routes.byCountry, { GB: ['twilio'] });
});

t.test('production refuses missing or default secrets, naming each', async (t) => {
  const required = ['INTERNAL_TOKEN', 'OTP_HMAC_SECRET', 'JWT_PRIVATE_KEY'] as const;
  const error = t.throws(() => loadConfig({ NODE_ENV: 'production' }, { requiredSecrets: required })) as ConfigError;
  t.ok(error instanceof ConfigError);
  for (const name of required) t.match(error.message, name);

  t.throws(
    () =>
      loadConfig(
        { NODE_ENV: 'production', INTERNAL_TOKEN: 'dev-internal-token-do-not-use-in-production' },
        { requiredSecrets: ['INTERNAL_TOKEN'] },
      ),
    { message: /INTERNAL_TOKEN: must not be a development default/ },
  );
  t.throws(
    () => loadConfig({ NODE_ENV: 'production', INTERNAL_TOKEN: 'short' }, { requiredSecrets: ['INTERNAL_TOKEN'] }),
    {
      message: /INTERNAL_TOKEN: must be at least 32/,
    },
  );
  const token = randomBytes(32).toString('hex');
  const ok = loadConfig({ NODE_ENV: 'production', INTERNAL_TOKEN: token }, { requiredSecrets: ['INTERNAL_TOKEN'] });
  t.equal(ok.internalToken, token);
  t.ok(ok.isProduction);
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production' }), 'a process that needs no secret starts');
});

const DEV_TOKEN = 'dev-internal-token-do-not-use-in-production';
const DEV_HMAC = 'dev-otp-hmac-secret-do-not-use-in-production';
const AUTH_SECRETS: readonly SecretName[] = ['INTERNAL_TOKEN', 'OTP_HMAC_SECRET'];

/** The problems production finds with these secrets in a process that needs both. */
function secretProblems(env: Record<string, string>, required: readonly SecretName[] = AUTH_SECRETS): string[] {
  try {
    loadConfig({ NODE_ENV: 'production', ...env }, { requiredSecrets: required });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
}

t.test('production refuses a development default however it is padded, under either name', async (t) => {
  const other = randomBytes(32).toString('hex');
  for (const value of [` ${DEV_TOKEN}`, `${DEV_TOKEN}  `, `\t${DEV_TOKEN}\n`, DEV_HMAC]) {
    t.same(
      secretProblems({ INTERNAL_TOKEN: value, OTP_HMAC_SECRET: other }),
      ['INTERNAL_TOKEN: must not be a development default in production'],
      JSON.stringify(value),
    );
    t.same(secretProblems({ INTERNAL_TOKEN: other, OTP_HMAC_SECRET: value.replace(DEV_TOKEN, DEV_HMAC) }), [
      'OTP_HMAC_SECRET: must not be a development default in production',
    ]);
  }
  t.same(
    secretProblems({ INTERNAL_TOKEN: ` ${'k'.repeat(31)} `, OTP_HMAC_SECRET: other }),
    ['INTERNAL_TOKEN: must be at least 32 characters in production'],
    'padding does not count towards the length',
  );
});

t.test('production refuses hand-made secrets: few different characters, or one string repeated', async (t) => {
  const handMade = [
    'a'.repeat(64),
    'x'.repeat(40),
    `${'x'.repeat(39)}y`,
    'ab'.repeat(20),
    'changeme'.repeat(4),
    'password1234'.repeat(3),
    '0123456789abcdef'.repeat(2),
    'qwertyuiop'.repeat(4).slice(0, 35),
    `  ${'s3cr3t!'.repeat(6)}  `,
  ];
  const other = randomBytes(32).toString('hex');
  for (const value of handMade) {
    const problems = secretProblems({ INTERNAL_TOKEN: value, OTP_HMAC_SECRET: other });
    t.equal(problems.length, 1, value);
    t.match(problems[0], /^INTERNAL_TOKEN: looks hand-made .*openssl rand -hex 32/, value);
    t.notMatch(problems.join('\n'), value.trim(), 'the value is never quoted');
  }
});

t.test('random secrets as the docs, compose, e2e and bench make them always pass', async (t) => {
  // .env.example says `openssl rand -hex 32`; e2e/compose and bench use randomBytes(32) as hex.
  const makers: Array<[string, () => string]> = [
    ['hex 32 bytes', () => randomBytes(32).toString('hex')],
    ['base64 32 bytes', () => randomBytes(32).toString('base64')],
    ['base64url 32 bytes', () => randomBytes(32).toString('base64url')],
    ['base64 24 bytes', () => randomBytes(24).toString('base64')],
    ['hex 16 bytes, the shortest', () => randomBytes(16).toString('hex')],
  ];
  for (const [what, make] of makers) {
    const refused = Array.from({ length: 200 }, () =>
      secretProblems({ INTERNAL_TOKEN: make(), OTP_HMAC_SECRET: make() }),
    ).flat();
    t.same(refused, [], what);
  }
  t.same(
    secretProblems({
      INTERNAL_TOKEN: 'Tr0ub4dor&3-correct-horse-battery-staple',
      OTP_HMAC_SECRET: randomBytes(32).toString('base64'),
    }),
    [],
    'a long passphrase of many characters passes too',
  );
});

t.test('production refuses one value for two secrets, naming both and quoting neither', async (t) => {
  const shared = randomBytes(32).toString('hex');
  const expected = ['OTP_HMAC_SECRET: must differ from INTERNAL_TOKEN in production (give each secret its own value)'];
  t.same(secretProblems({ INTERNAL_TOKEN: shared, OTP_HMAC_SECRET: shared }), expected, 'auth, which needs both');
  t.same(secretProblems({ INTERNAL_TOKEN: shared, OTP_HMAC_SECRET: ` ${shared}\n` }), expected, 'padding aside');
  t.same(
    secretProblems({ INTERNAL_TOKEN: shared, OTP_HMAC_SECRET: shared }, ['INTERNAL_TOKEN']),
    expected,
    'referral, which needs one of them, given both',
  );
  t.same(secretProblems({ INTERNAL_TOKEN: shared, OTP_HMAC_SECRET: shared }, []), [], 'a process that needs neither');
  t.same(secretProblems({ INTERNAL_TOKEN: shared }, ['INTERNAL_TOKEN']), [], 'referral given only its own');
  t.same(
    secretProblems({ INTERNAL_TOKEN: shared, OTP_HMAC_SECRET: randomBytes(32).toString('hex') }),
    [],
    'two values, two secrets',
  );
  t.notMatch(secretProblems({ INTERNAL_TOKEN: shared, OTP_HMAC_SECRET: shared }).join('\n'), shared);
  t.doesNotThrow(
    () => loadConfig({ INTERNAL_TOKEN: shared, OTP_HMAC_SECRET: shared }, { requiredSecrets: AUTH_SECRETS }),
    'development does not care',
  );
});

t.test('secret values never appear in validation messages', async (t) => {
  const error = t.throws(() =>
    loadConfig({ NODE_ENV: 'production', INTERNAL_TOKEN: 'hunter2' }, { requiredSecrets: ['INTERNAL_TOKEN'] }),
  ) as Error;
  t.notMatch(error.message, 'hunter2');
});

t.test('a URL password never appears in a validation message', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { DATABASE_URL: 'mysql://u:s3cret-pw@db.internal/referral' },
      /DATABASE_URL: .*\(got "mysql:\/\/u:\*\*\*@db\.internal\/referral"\)/,
    ],
    [
      { REDIS_URL: 'http://:s3cret-pw@redis.internal:6379' },
      /REDIS_URL: .*\(got "http:\/\/:\*\*\*@redis\.internal:6379"\)/,
    ],
    [{ AUTH_URL: 'ftp://svc:s3cret-pw@auth' }, /AUTH_URL: .*\(got "ftp:\/\/svc:\*\*\*@auth"\)/],
    // Values that match the pattern but do not parse as URLs at all.
    [
      { DATABASE_URL: 'postgres://u:s3cret-pw@127.0.0.1:99999/db' },
      /DATABASE_URL: is not a valid URL \(got "postgres:\/\/u:\*\*\*@127\.0\.0\.1:99999\/db"\)/,
    ],
    [{ REDIS_URL: 'redis://:s3cret-pw@[::1/0' }, /REDIS_URL: is not a valid URL \(got "redis:\/\/:\*\*\*@\[::1\/0"\)/],
    [
      { DATABASE_URL: 'postgres://u:s3cr@t pw"@bad host/db' },
      /DATABASE_URL: is not a valid URL \(got "postgres:\/\/u:\*\*\*@bad host\/db"\)/,
    ],
  ];
  for (const [env, pattern] of cases) {
    const error = t.throws(() => loadConfig(env), { name: 'ConfigError' }, JSON.stringify(env)) as Error;
    t.match(error.message, pattern);
    t.notMatch(error.message, /s3cr/, 'the password is masked');
  }
});

t.test("the gateway's edge settings: defaults, overrides and the checks across variables", async (t) => {
  t.same(loadConfig({}).gateway, {
    trustedProxies: [],
    metricsPort: 9091,
    maxConnections: 4096,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 15_000,
    keepAliveTimeoutMs: 72_000,
    healthIntervalMs: 2000,
    ejectMs: 10_000,
  });
  const set = loadConfig({
    GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.1,::1',
    GATEWAY_METRICS_PORT: '9100',
    GATEWAY_MAX_CONNECTIONS: '500',
    GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '65000',
  });
  t.same(set.gateway.trustedProxies, ['10.0.0.0/8', '192.0.2.1', '::1']);
  const privateRanges = '10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,fd12:3456::/32,10.0.0.0/255.0.0.0';
  t.same(
    loadConfig({ TRUSTED_PROXIES: privateRanges }).trustedProxies,
    privateRanges.split(','),
    "the private ranges (compose's default) are not too wide",
  );
  t.match(set.gateway, { metricsPort: 9100, maxConnections: 500, keepAliveTimeoutMs: 65_000 });
  const refused: Array<[Record<string, string>, RegExp]> = [
    [
      { GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8,balancer.internal' },
      /GATEWAY_TRUSTED_PROXIES: invalid IP address: balancer\.internal/,
    ],
    [{ GATEWAY_TRUSTED_PROXIES: '10.0.0.0/33' }, /GATEWAY_TRUSTED_PROXIES: invalid range/],
    [{ GATEWAY_TRUSTED_PROXIES: '10.0.0.1,0.0.0.0/1' }, /GATEWAY_TRUSTED_PROXIES: 0\.0\.0\.0\/1 is wider/],
    [{ TRUSTED_PROXIES: '2000::/3' }, /TRUSTED_PROXIES: 2000::\/3 is wider/],
    [{ TRUSTED_PROXIES: '0.0.0.0/128.0.0.0' }, /TRUSTED_PROXIES: 0\.0\.0\.0\/128\.0\.0\.0 is wider/],
    [{ TRUSTED_PROXIES: '::ffff:0.0.0.0/97' }, /TRUSTED_PROXIES: ::ffff:0\.0\.0\.0\/97 is wider/],
    [{ AUTH_URLS: 'http://auth:3001,http://auth-2:3001/v1' }, /AUTH_URLS: "http:\/\/auth-2:3001\/v1" must be scheme/],
    [{ REFERRAL_URL: 'http://referral:3002/?pool=1' }, /REFERRAL_URL: .* without a path or query/],
    [{ TRUSTED_PROXIES: '127.0.0.1,gateway' }, /TRUSTED_PROXIES: invalid IP address: gateway/],
    [{ GATEWAY_METRICS_PORT: '8080' }, /GATEWAY_METRICS_PORT: must differ from GATEWAY_PORT/],
    [
      { GATEWAY_HEADERS_TIMEOUT_MS: '20000', GATEWAY_REQUEST_TIMEOUT_MS: '15000' },
      /GATEWAY_HEADERS_TIMEOUT_MS: must not exceed GATEWAY_REQUEST_TIMEOUT_MS/,
    ],
    [{ GATEWAY_MAX_CONNECTIONS: '0' }, /GATEWAY_MAX_CONNECTIONS/],
    [{ GATEWAY_KEEP_ALIVE_TIMEOUT_MS: 'forever' }, /GATEWAY_KEEP_ALIVE_TIMEOUT_MS/],
  ];
  for (const [env, pattern] of refused)
    t.throws(() => loadConfig(env), { name: 'ConfigError', message: pattern }, JSON.stringify(env));
});

t.test('an IPv4-mapped proxy range is as wide as the IPv4 range it maps, however it is written', async (t) => {
  // proxy-addr matches every IPv4 client against each of these: all of them trust the whole Internet.
  const everyone = ['::ffff:0.0.0.0/96', '::ffff:0:0/96', '::ffff:0000:0000/96', '0:0:0:0:0:ffff:0.0.0.0/96'];
  for (const name of ['TRUSTED_PROXIES', 'GATEWAY_TRUSTED_PROXIES']) {
    for (const range of [...everyone, '0:0:0:0:0:ffff:0:0/100', '::FFFF:8000:0/97']) {
      t.throws(
        () => loadConfig({ [name]: `10.0.0.1,${range}` }),
        { name: 'ConfigError', message: `${name}: ${range} is wider than any balancer's range` },
        `${name}=${range}`,
      );
    }
    for (const range of ['::ffff:10.0.0.0/104', '::ffff:a00:0/104', '0:0:0:0:0:ffff:a00:0/104', 'fc00::/7']) {
      const config = loadConfig({ [name]: range });
      const trusted = name === 'TRUSTED_PROXIES' ? config.trustedProxies : config.gateway.trustedProxies;
      t.same(trusted, [range], `${name}=${range} is narrow enough`);
    }
  }
  t.throws(
    () => loadConfig({ TRUSTED_PROXIES: 'fc::/7' }),
    { message: /TRUSTED_PROXIES: fc::\/7 is wider/ },
    'fc:: is 00fc::, not the private range',
  );
});

t.test('the list of known variables covers the contract', async (t) => {
  for (const name of [
    'GATEWAY_PORT',
    'AUTH_PORT',
    'REFERRAL_PORT',
    'DATABASE_URL',
    'REDIS_URL',
    'HOST',
    'DEFAULT_REGION',
    'ALLOWED_COUNTRIES',
    'OTP_LENGTH',
    'OTP_TTL_SECONDS',
    'OTP_MAX_ATTEMPTS',
    'OTP_RESEND_SECONDS',
    'OTP_MAX_SENDS_PER_HOUR',
    'OTP_MAX_FAILED_PER_DAY',
    'SEND_CODE_IP_PER_HOUR',
    'VERIFY_IP_FAILED_PER_HOUR',
    'OTP_PHONE_FAILED_PER_DAY',
    'OTP_ALLOW_SHORT',
    'REFERRAL_TIMEOUT_MS',
    'ACCESS_TOKEN_TTL_SECONDS',
    'REFRESH_TOKEN_TTL_SECONDS',
    'INTERNAL_TOKEN',
    'TRUSTED_PROXIES',
    'CORS_ORIGINS',
    'GATEWAY_TRUSTED_PROXIES',
    'GATEWAY_METRICS_PORT',
    'GATEWAY_MAX_CONNECTIONS',
    'GATEWAY_KEEP_ALIVE_TIMEOUT_MS',
    'GATEWAY_HEADERS_TIMEOUT_MS',
    'GATEWAY_REQUEST_TIMEOUT_MS',
    'SMS_DENY_PREFIXES',
    'SMS_PREFIX_DIGITS',
    'SMS_PREFIX_PER_HOUR',
    'SMS_MIN_CONVERSION',
    'SMS_DAILY_BUDGET',
    'CAPTCHA_PROVIDER',
    'CAPTCHA_SECRET',
    'CAPTCHA_BASE_URL',
    'CAPTCHA_MODE',
    'CAPTCHA_FAIL_OPEN',
    'CAPTCHA_TIMEOUT_MS',
    'TEST_PHONES',
    'INVITE_NOTICE_WINDOW_SECONDS',
    'AUTH_URLS',
    'REFERRAL_URLS',
    'REDIS_CLUSTER_NODES',
    'GATEWAY_HEALTH_INTERVAL_MS',
    'GATEWAY_EJECT_SECONDS',
  ]) {
    t.ok(ENV_VARIABLES.includes(name), name);
  }
});

t.test('production refuses codes shorter than 6 digits unless OTP_ALLOW_SHORT=true, saying why', async (t) => {
  const secrets = { NODE_ENV: 'production', OTP_HMAC_SECRET: 'x'.repeat(40), OTP_LENGTH: '4' };
  const error = t.throws(() => loadConfig(secrets, { issuesOtps: true })) as ConfigError;
  t.match(error.message, /OTP_LENGTH: 4-digit codes are refused in production: 5 guesses break one code in 2000/);
  t.match(error.message, /OTP_LENGTH=6 or more, or OTP_ALLOW_SHORT=true/);
  t.equal(loadConfig({ ...secrets, OTP_LENGTH: '6' }, { issuesOtps: true }).otp.length, 6);
  t.equal(
    loadConfig({ ...secrets, OTP_ALLOW_SHORT: 'true' }, { issuesOtps: true }).otp.length,
    4,
    'the operator may accept the risk',
  );
  t.doesNotThrow(
    () => loadConfig({ NODE_ENV: 'production', OTP_LENGTH: '4' }),
    'a process that issues no codes does not care',
  );
  t.equal(
    loadConfig({ NODE_ENV: 'production', OTP_HMAC_SECRET: 'x'.repeat(40) }, { issuesOtps: true }).otp.length,
    6,
    'the default passes',
  );
  t.equal(loadConfig({ OTP_LENGTH: '4' }, { issuesOtps: true }).otp.length, 4, 'development keeps short codes');
});

t.test('in production the gateway waits longer than a verify can take in auth', async (t) => {
  const production = { NODE_ENV: 'production' };
  t.throws(() => loadConfig({ ...production, UPSTREAM_TIMEOUT_MS: '9000' }), {
    message: /UPSTREAM_TIMEOUT_MS: must exceed REFERRAL_TIMEOUT_MS \+ 5000 ms \(10000\)/,
  });
  t.throws(
    () => loadConfig({ ...production, REFERRAL_TIMEOUT_MS: '8000' }),
    { message: /UPSTREAM_TIMEOUT_MS/ },
    'a longer referral timeout needs a longer gateway timeout',
  );
  t.equal(
    loadConfig({ ...production, REFERRAL_TIMEOUT_MS: '8000', UPSTREAM_TIMEOUT_MS: '14000' }).referralTimeoutMs,
    8000,
  );
  t.match(loadConfig(production), { upstreamTimeoutMs: 12_000, referralTimeoutMs: 5000 }, 'the defaults agree');
  t.equal(loadConfig({ UPSTREAM_TIMEOUT_MS: '300' }).upstreamTimeoutMs, 300, 'a test may shorten it to see it fire');
});

t.test('in production auth waits for a sign-in a second longer than referral may work on it', async (t) => {
  const production = { NODE_ENV: 'production' };
  for (const value of ['1', '1000', '1999']) {
    const error = t.throws(() => loadConfig({ ...production, REFERRAL_TIMEOUT_MS: value })) as ConfigError;
    t.same(
      error.problems,
      ['REFERRAL_TIMEOUT_MS: production needs at least 2000, a second more than referral gives itself for a sign-in'],
      value,
    );
  }
  t.equal(loadConfig({ ...production, REFERRAL_TIMEOUT_MS: '2000' }).referralTimeoutMs, 2000);
  t.equal(loadConfig({ REFERRAL_TIMEOUT_MS: '300' }).referralTimeoutMs, 300, 'a test may shorten it to see it fire');
});

t.test('a route of providers that carry login codes only is refused: its notices would never go out', async (t) => {
  for (const [env, problem] of [
    [{ SMS_ROUTES: 'RU:telegram;*:smsc' }, 'SMS_ROUTES (RU): telegram carries login codes only'],
    [{ SMS_ROUTES: 'RU:smsru;*:telegram' }, 'SMS_ROUTES (*): telegram carries login codes only'],
    [{ SMS_ROUTES: 'RU:smsru', SMS_PROVIDERS: 'telegram' }, 'SMS_PROVIDERS: telegram carries login codes only'],
    [{ SMS_PROVIDER: 'telegram' }, 'SMS_PROVIDER: telegram carries login codes only'],
  ] as const) {
    const error = t.throws(() => loadConfig(env), { name: 'ConfigError' }, JSON.stringify(env)) as ConfigError;
    t.same(error.problems, [`${problem}; add an SMS provider after it for the notices`], JSON.stringify(env));
  }
  t.same(loadConfig({ SMS_ROUTES: 'RU:telegram,smsru;*:console' }).sms.routes.byCountry, {
    RU: ['telegram', 'smsru'],
  });
});

t.test('SMS routes: SMS_PROVIDERS for every country, SMS_ROUTES per country, the older SMS_PROVIDER', async (t) => {
  t.same(loadConfig({}).sms.routes, { byCountry: {}, fallback: ['console'] });
  t.same(loadConfig({ SMS_PROVIDER: 'console' }).sms.providers, ['console']);
  t.same(loadConfig({ SMS_PROVIDERS: 'smsru, smsc' as string }).sms.routes.fallback, ['smsru', 'smsc']);
  const routed = loadConfig({ SMS_ROUTES: 'RU:telegram,smsru,smsc; KZ:smsc ;*:twilio', SMS_PROVIDERS: 'console' }).sms;
  t.same(routed.routes, { byCountry: { RU: ['telegram', 'smsru', 'smsc'], KZ: ['smsc'] }, fallback: ['twilio'] });
  t.same([...routed.providers].sort(), ['smsc', 'smsru', 'telegram', 'twilio']);
  t.same(loadConfig({ SMS_ROUTES: 'RU:smsru', SMS_PROVIDERS: 'twilio' }).sms.routes.fallback, ['twilio']);
  for (const [routes, problem] of [
    ['RU:smsru;RU:smsc', /SMS_ROUTES: RU is routed twice/],
    ['RU smsru', /SMS_ROUTES: "RU smsru" is not COUNTRY:provider/],
    ['RU:smsru,beeline', /unknown provider beeline/],
    ['RU:smsru,smsru', /names a provider twice/],
    ['ru:smsru', /is not COUNTRY:provider/],
  ] as const) {
    t.throws(() => loadConfig({ SMS_ROUTES: routes }), { message: problem }, routes);
  }
  t.throws(() => loadConfig({ SMS_PROVIDERS: 'smsru,sms' }), { message: /SMS_PROVIDERS/ });
});

t.test(
  'a routed provider without its credentials is refused where SMS is sent or received, never quoting them',
  async (t) => {
    const options = { smsCredentials: true };
    t.doesNotThrow(() => loadConfig({ SMS_PROVIDERS: 'smsru' }), 'the gateway and referral do not need them');
    const missing = (env: Record<string, string>) => {
      try {
        loadConfig(env, options);
      } catch (error) {
        return (error as ConfigError).problems;
      }
      return [];
    };
    t.same(missing({ SMS_ROUTES: 'RU:telegram,smsru,smsc;*:twilio' }), [
      'SMS provider telegram is routed to but TELEGRAM_GATEWAY_TOKEN not set',
      'SMS provider smsru is routed to but SMSRU_API_ID not set',
      'SMS provider smsc is routed to but SMSC_LOGIN, SMSC_PASSWORD not set',
      'SMS provider twilio is routed to but TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, ' +
        'TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID not set',
    ]);
    t.same(
      missing({ NODE_ENV: 'production', SMS_PROVIDERS: 'smsc', SMSC_LOGIN: 'me' }),
      ['SMS provider smsc is routed to but SMSC_PASSWORD not set'].concat(missing({ NODE_ENV: 'production' })),
    );
    const full = loadConfig(
      {
        SMS_PROVIDERS: 'smsru,twilio',
        SMSRU_API_ID: 'api-id-secret-value',
        TWILIO_ACCOUNT_SID: `AC${'a'.repeat(32)}`,
        TWILIO_AUTH_TOKEN: 'twilio-token-secret-value',
        TWILIO_MESSAGING_SERVICE_SID: `MG${'b'.repeat(32)}`,
        TWILIO_BASE_URL: 'http://127.0.0.1:9999/',
        PUBLIC_BASE_URL: 'https://api.example.com/',
      },
      options,
    ).sms;
    t.match(full, {
      smsru: { apiId: 'api-id-secret-value', baseUrl: 'https://sms.ru' },
      twilio: { baseUrl: 'http://127.0.0.1:9999', messagingServiceSid: `MG${'b'.repeat(32)}` },
      publicBaseUrl: 'https://api.example.com',
    });
    for (const name of ['SMSRU_API_ID', 'SMSC_PASSWORD', 'TWILIO_AUTH_TOKEN', 'TELEGRAM_GATEWAY_TOKEN']) {
      const secret = `${'x'.repeat(5000)}-${name}`;
      const error = t.throws(() => loadConfig({ [name]: secret })) as Error;
      t.notMatch(error.message, 'xxxxx', `${name}'s value is not quoted`);
    }
  },
);

t.test('SMS texts: locale, autofill settings and the worker metrics port are checked', async (t) => {
  t.match(loadConfig({}).sms, {
    defaultLocale: 'en',
    androidAppHash: undefined,
    webOtpDomain: undefined,
    metricsPort: 9092,
  });
  t.match(loadConfig({ SMS_ANDROID_APP_HASH: 'FA+9qCX9VSu', SMS_WEBOTP_DOMAIN: 'app.example.com' }).sms, {
    androidAppHash: 'FA+9qCX9VSu',
    webOtpDomain: 'app.example.com',
  });
  for (const [name, value] of [
    ['SMS_DEFAULT_LOCALE', 'de'],
    ['SMS_ANDROID_APP_HASH', 'short'],
    ['SMS_WEBOTP_DOMAIN', 'https://app.example.com'],
    ['SMS_WEBOTP_DOMAIN', 'app.example.com:443'],
    ['PUBLIC_BASE_URL', 'api.example.com'],
    ['TWILIO_ACCOUNT_SID', 'SK123'],
    ['SMS_WORKER_METRICS_PORT', '70000'],
  ] as const) {
    t.throws(() => loadConfig({ [name]: value }), { message: new RegExp(name) }, `${name}=${value}`);
  }
});

t.test('the SMS guard: deny prefixes, budgets, captcha and notices are read and checked', async (t) => {
  const config = loadConfig({
    SMS_DENY_PREFIXES: '+882, +7 999 1',
    SMS_DAILY_BUDGET: 'RU:50000; *:2000',
    CAPTCHA_PROVIDER: 'smartcaptcha',
    CAPTCHA_MODE: 'risk',
    CAPTCHA_SECRET: 'ysc2_secret',
    CAPTCHA_FAIL_OPEN: 'true',
  });
  t.same(config.guard.denyPrefixes, ['+882', '+79991']);
  t.same(config.guard.budget, { byCountry: { RU: 50_000 }, other: 2000 });
  t.match(config.guard.captcha, {
    provider: 'smartcaptcha',
    mode: 'risk',
    failOpen: true,
    baseUrl: 'https://smartcaptcha.yandexcloud.net',
    timeoutMs: 3000,
  });
  t.match(loadConfig({}).guard, {
    prefixDigits: 4,
    prefixPerHour: 20,
    minConversion: 0.2,
    budget: { byCountry: {}, other: undefined },
    captcha: { mode: 'off' },
    inviteNoticeWindowSeconds: 3600,
  });
  t.same(
    loadConfig({ SMS_DAILY_BUDGET: '300' }).guard.budget,
    { byCountry: {}, other: 300 },
    'one number: every country',
  );
  for (const [env, problem] of [
    [{ SMS_DENY_PREFIXES: '882' }, /SMS_DENY_PREFIXES: "882" is not an E.164 prefix/],
    [{ SMS_DAILY_BUDGET: 'RU:lots' }, /SMS_DAILY_BUDGET: "RU:lots"/],
    [{ SMS_DAILY_BUDGET: 'RU:1;RU:2' }, /RU is given twice/],
    [{ CAPTCHA_MODE: 'always' }, /CAPTCHA_MODE=always needs CAPTCHA_PROVIDER/],
    [{ CAPTCHA_PROVIDER: 'recaptcha' }, /CAPTCHA_PROVIDER/],
    [{ SMS_MIN_CONVERSION: '1.5' }, /SMS_MIN_CONVERSION/],
  ] as const) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message: problem }, JSON.stringify(env));
  }
  t.throws(
    () => loadConfig({ CAPTCHA_MODE: 'always', CAPTCHA_PROVIDER: 'turnstile' }, { issuesOtps: true }),
    { message: /CAPTCHA_MODE=always needs CAPTCHA_SECRET/ },
    'the process that checks challenges needs the secret',
  );
});

t.test('TEST_PHONES: fixed codes with a required expiry day, allowed in production, never quoted back', async (t) => {
  const now = Date.UTC(2026, 11, 5, 12);
  const production = {
    NODE_ENV: 'production',
    TEST_PHONES: '+79990000001:123456@2026-12-05, 8 999 000-00-02:654321@2027-06-30',
  };
  // Written without a space in the notation this parser takes: +E164:CODE@DAY.
  t.throws(() => loadConfig(production, { now }), { message: /TEST_PHONES entry 2: is not \+E164:CODE@YYYY-MM-DD/ });
  const config = loadConfig(
    { ...production, TEST_PHONES: '+79990000001:123456@2026-12-05,+79990000002:654321@2027-06-30' },
    { now },
  );
  t.same(
    [...config.guard.testPhones.values()].map((p) => [p.phone, p.code, p.until]),
    [
      ['+79990000001', '123456', '2026-12-05'],
      ['+79990000002', '654321', '2027-06-30'],
    ],
  );
  t.equal(config.guard.testPhones.get('+79990000001')?.expiresAt, Date.UTC(2026, 11, 6), 'through the end of its day');
  for (const [value, problem] of [
    ['+79990000001:123456@2026-12-04', /entry 1: \+79990000001 expired at the end of 2026-12-04; remove or renew it/],
    ['+79990000001:123456', /entry 1: is not \+E164:CODE@YYYY-MM-DD \(the expiry day is required\)/],
    ['+79990000001:12345@2027-01-01', /the code must have OTP_LENGTH \(6\) digits/],
    ['+79990000001:123456@2027-02-30', /"2027-02-30" is not a day/],
    ['+74951234567:777777@2027-01-01', /is not a number the API accepts \(not_mobile\)/],
    ['+79990000001:123456@2027-01-01,+79990000001:123457@2027-01-01', /listed twice/],
  ] as const) {
    const error = t.throws(() => loadConfig({ TEST_PHONES: value }, { now }), { message: problem }, value) as Error;
    t.notMatch(error.message, /:123456|12345@|123457|777777/, 'the codes are never quoted back');
  }
});

t.test('AUTH_URLS and REFERRAL_URLS: several instances behind the gateway; one URL still works', async (t) => {
  const config = loadConfig({
    AUTH_URLS: 'http://auth-1:3001/, http://auth-2:3001',
    REFERRAL_URL: 'http://referral:3002',
  });
  t.same(config.urls.authInstances, ['http://auth-1:3001', 'http://auth-2:3001']);
  t.equal(config.urls.auth, 'http://auth-1:3001', 'the first is where JWKS and docs are fetched by default');
  t.same(config.urls.referralInstances, ['http://referral:3002']);
  t.same(
    config.urls.jwksAlternates,
    ['http://auth-2:3001/.well-known/jwks.json'],
    'the other instances publish the same keys, asked when the first cannot answer',
  );
  t.same(loadConfig({ AUTH_URLS: 'http://a:1,http://b:1', JWKS_URL: 'http://keys/jwks' }).urls.jwksAlternates, []);
  t.match(loadConfig({}).gateway, { healthIntervalMs: 2000, ejectMs: 10_000 });
  t.throws(() => loadConfig({ AUTH_URLS: 'auth-1:3001' }), {
    message: /AUTH_URLS: "auth-1:3001" is not an http\(s\) URL/,
  });
  t.throws(() => loadConfig({ REFERRAL_URLS: 'http://a:1,http://a:1' }), {
    message: /REFERRAL_URLS: names an instance twice/,
  });
  const error = t.throws(() => loadConfig({ AUTH_URLS: 'http://user:hunter2@auth:1,x' })) as Error;
  t.notMatch(error.message, /hunter2/, 'a password in a URL is never quoted back');
});

t.test('REDIS_CLUSTER_NODES: host:port of the seed nodes', async (t) => {
  t.same(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-2:7001,[::1]:7002' }).redisClusterNodes, [
    { host: '10.0.0.1', port: 7000 },
    { host: 'redis-2', port: 7001 },
    { host: '::1', port: 7002 },
  ]);
  t.same(loadConfig({}).redisClusterNodes, [], 'none: REDIS_URL');
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'redis:port' }), { message: /entry 1 is not host:port/ });
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'redis:7000,redis:70000' }), {
    message: /entry 2 is not host:port/,
  });
  // A password pasted with a node, whole or cut by the split at commas, is never quoted.
  for (const value of [
    '10.0.0.2:7000,redis://:s3cret@10.0.0.1:7000',
    '10.0.0.2:7000,rediss://app:s3cret@10.0.0.1:7000',
    '10.0.0.2:7000,app:s3cret@10.0.0.1:7000',
    '10.0.0.2:7000,redis://:s3c,ret@10.0.0.1:7000',
    '10.0.0.2:7000,10.0.0.1:7000:s3cret',
  ]) {
    const error = t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: value })) as ConfigError;
    t.match(error.problems, [/^REDIS_CLUSTER_NODES: entry 2 is not host:port$/], value);
    t.notMatch(error.message, /s3c/, value);
  }
});
