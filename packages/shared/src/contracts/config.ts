import { compile as compileTrust } from '@fastify/proxy-addr';
import ipaddr from 'ipaddr.js';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { maskUrlPassword } from './credentials.js';
import { GUARD_ENV, guardConfig, type GuardConfig } from './guard-config.js';
import { unknownCountryProblem } from './phone-country.js';
import { SMS_ENV, SMS_URL_VARIABLES, smsConfig, type SmsConfig } from './sms-config.js';

const Port = (port: number) => Type.Integer({ minimum: 1, maximum: 65535, default: port });
const PositiveInt = (value: number, maximum = 100_000_000) => Type.Integer({ minimum: 1, maximum, default: value });

/**
 * Every environment variable the system reads, with the contract's defaults. Unknown variables are
 * ignored (the process environment holds many), known ones are validated and converted once here;
 * code reads the typed `Config`, never `process.env`.
 */
export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('test'), Type.Literal('production')], {
    default: 'development',
  }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  // The operations ports (the gateway's GATEWAY_METRICS_PORT, the worker's SMS_WORKER_METRICS_PORT)
  // bind apart from HOST: a gateway on 0.0.0.0 must not show /metrics and its readiness details too.
  OPS_HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  GATEWAY_PORT: Port(8080),
  AUTH_PORT: Port(3001),
  REFERRAL_PORT: Port(3002),
  AUTH_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  REFERRAL_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  // Several instances of a service behind the gateway, comma-separated; checked as URLs one by one.
  AUTH_URLS: Type.Optional(Type.String({ maxLength: 4096 })),
  REFERRAL_URLS: Type.Optional(Type.String({ maxLength: 4096 })),
  GATEWAY_HEALTH_INTERVAL_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 2000 }),
  GATEWAY_EJECT_SECONDS: Type.Integer({ minimum: 0, maximum: 3600, default: 10 }),
  JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JWKS_REFRESH_SECONDS: PositiveInt(60, 86_400),
  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://', default: 'postgres://postgres@127.0.0.1:5432/referral' }),
  DATABASE_POOL_SIZE: PositiveInt(10, 200),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,32}$', default: 'refstack' }),
  // host:port of some nodes of a Redis Cluster (the rest are discovered); REDIS_URL is then unused.
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ maxLength: 4096 })),
  DEFAULT_REGION: Type.String({ pattern: '^[A-Z]{2}$', default: 'RU' }),
  ALLOWED_COUNTRIES: Type.String({ pattern: '^(\\*|[A-Z]{2}(,[A-Z]{2})*)$', default: 'RU' }),
  OTP_LENGTH: Type.Integer({ minimum: 4, maximum: 8, default: 6 }),
  OTP_TTL_SECONDS: PositiveInt(300, 86_400),
  OTP_MAX_ATTEMPTS: PositiveInt(5, 100),
  OTP_RESEND_SECONDS: Type.Integer({ minimum: 0, maximum: 86_400, default: 60 }),
  OTP_MAX_SENDS_PER_HOUR: PositiveInt(5, 1_000_000),
  OTP_MAX_FAILED_PER_DAY: PositiveInt(20, 1_000_000),
  OTP_PHONE_FAILED_PER_DAY: PositiveInt(100, 1_000_000),
  OTP_ALLOW_SHORT: Type.Boolean({ default: false }),
  LEGACY_PATHS: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  SEND_CODE_IP_PER_HOUR: PositiveInt(30, 100_000_000),
  VERIFY_IP_FAILED_PER_HOUR: PositiveInt(30, 100_000_000),
  OTP_HMAC_SECRET: Type.Optional(Type.String()),
  ACCESS_TOKEN_TTL_SECONDS: PositiveInt(900, 86_400),
  REFRESH_TOKEN_TTL_SECONDS: PositiveInt(2_592_000, 31_536_000),
  JWT_PRIVATE_KEY: Type.Optional(Type.String()),
  JWT_PUBLIC_KEYS: Type.Optional(Type.String()),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'refstack-auth' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'refstack' }),
  INTERNAL_TOKEN: Type.Optional(Type.String()),
  TRUSTED_PROXIES: Type.String({ default: '127.0.0.1,::1' }),
  CORS_ORIGINS: Type.String({ default: '' }),
  UPSTREAM_TIMEOUT_MS: PositiveInt(12_000, 120_000),
  REFERRAL_TIMEOUT_MS: PositiveInt(5000, 60_000),
  ...SMS_ENV,
  ...GUARD_ENV,
  // The gateway's public edge: whose X-Forwarded-For it believes, its operations port, and the
  // limits of its listening socket.
  GATEWAY_TRUSTED_PROXIES: Type.String({ default: '' }),
  GATEWAY_METRICS_PORT: Port(9091),
  GATEWAY_MAX_CONNECTIONS: PositiveInt(4096, 1_000_000),
  GATEWAY_HEADERS_TIMEOUT_MS: PositiveInt(10_000, 300_000),
  GATEWAY_REQUEST_TIMEOUT_MS: PositiveInt(15_000, 300_000),
  GATEWAY_KEEP_ALIVE_TIMEOUT_MS: PositiveInt(72_000, 3_600_000),
});

export type Env = Static<typeof EnvSchema>;
export const ENV_VARIABLES: readonly string[] = Object.keys(EnvSchema.properties);

/** Secrets with development defaults; production refuses to start with a default or missing value. */
const DEV_SECRETS = {
  INTERNAL_TOKEN: 'dev-internal-token-do-not-use-in-production',
  OTP_HMAC_SECRET: 'dev-otp-hmac-secret-do-not-use-in-production',
} as const;
export type SecretName = keyof typeof DEV_SECRETS | 'JWT_PRIVATE_KEY';
const MIN_SECRET_LENGTH = 32;
/**
 * A secret typed by hand (`aaaa…`, `xxxxxxxx…1`) uses a few characters over and over. Random ones
 * do not: fewer than 8 different characters happens to `openssl rand -hex 32` with odds below
 * 1e-18 and to `openssl rand -base64 32` below 1e-30 (to the shortest hex accepted, 32 digits,
 * about 4e-8, and then a start-up message asks for another).
 */
const MIN_SECRET_DISTINCT = 8;

/** Whether `value` is one shorter string written over and over (`abcabcab`): its period is at most half its length. */
function isRepetition(value: string): boolean {
  // Shifted by its period, such a string still reads as its own beginning. Secrets are short, so
  // trying every period up to half is cheap.
  for (let period = 1; period * 2 <= value.length; period += 1) if (value.startsWith(value.slice(period))) return true;
  return false;
}

/** What is wrong with a production secret (trimmed at load), or undefined. The answer never quotes the value. */
function weakSecretProblem(value: string): string | undefined {
  if ((Object.values(DEV_SECRETS) as string[]).includes(value))
    return 'must not be a development default in production';
  if (value.length < MIN_SECRET_LENGTH) return `must be at least ${MIN_SECRET_LENGTH} characters in production`;
  if (new Set(value).size < MIN_SECRET_DISTINCT || isRepetition(value)) {
    return (
      `looks hand-made (fewer than ${MIN_SECRET_DISTINCT} different characters, or one string repeated); ` +
      'in production use a random value, e.g. openssl rand -hex 32'
    );
  }
  return undefined;
}

export interface Config {
  env: Env['NODE_ENV'];
  isProduction: boolean;
  host: string;
  /** Where the operations ports listen (OPS_HOST); loopback unless the operator opens them. */
  opsHost: string;
  logLevel: Env['LOG_LEVEL'];
  ports: { gateway: number; auth: number; referral: number };
  urls: {
    auth: string;
    referral: string;
    jwks: string;
    /** Other auth instances' key sets, asked when `jwks` cannot answer (none when JWKS_URL is set). */
    jwksAlternates: string[];
    /** Every instance behind the gateway: AUTH_URLS, or AUTH_URL alone. */
    authInstances: string[];
    referralInstances: string[];
  };
  /** How often referral fetches auth's keys again, so that a key auth stops publishing stops verifying. */
  jwksRefreshSeconds: number;
  /** Whether the seeds' paths (first and second seed) are served; LEGACY_PATHS=off answers them 404. */
  legacyPaths: boolean;
  databaseUrl: string;
  databasePoolSize: number;
  redisUrl: string;
  /** REDIS_CLUSTER_NODES: when not empty, every Redis user connects to this cluster instead. */
  redisClusterNodes: Array<{ host: string; port: number }>;
  redisKeyPrefix: string;
  phone: { defaultRegion: string; allowedCountries: readonly string[] | '*' };
  otp: {
    length: number;
    ttlSeconds: number;
    maxAttempts: number;
    resendSeconds: number;
    maxSendsPerHour: number;
    /** Wrong tries for one phone from one client per rolling 24 h. */
    maxFailedPerDay: number;
    /** Wrong tries for one phone from all clients per rolling 24 h before verify slows down. */
    phoneFailedPerDay: number;
    hmacSecret: string;
  };
  sendCodeIpPerHour: number;
  verifyIpFailedPerHour: number;
  tokens: {
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
    privateKeyPem: string | undefined;
    extraPublicKeysPem: string | undefined;
    issuer: string;
    audience: string;
  };
  internalToken: string;
  trustedProxies: string[];
  corsOrigins: string[];
  upstreamTimeoutMs: number;
  /** Auth's limit for the referral service's answer to a sign-in. */
  referralTimeoutMs: number;
  sms: SmsConfig;
  /** The SMS pumping guard: destinations, ranges, budget, bot challenge, test numbers, notices. */
  guard: GuardConfig;
  gateway: GatewayEdgeConfig;
}

export interface GatewayEdgeConfig {
  /** Peers (addresses/CIDRs) whose X-Forwarded-For names the client; empty: the socket's address does. */
  trustedProxies: string[];
  /** The internal port of /metrics and the detailed readiness report. */
  metricsPort: number;
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How often the gateway asks each upstream instance's /health/ready; 0: never. */
  healthIntervalMs: number;
  /** The least time an instance that failed stays out of rotation. */
  ejectMs: number;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadConfigOptions {
  /** Secrets this process needs; in production each must be set to a non-default value. */
  requiredSecrets?: readonly SecretName[];
  /** This process issues one-time codes: production refuses codes too short to resist guessing. */
  issuesOtps?: boolean;
  /** This process sends SMS or checks delivery receipts: every routed provider needs its credentials. */
  smsCredentials?: boolean;
  /** The clock test numbers' expiry days are judged by (milliseconds since the epoch). */
  now?: number;
}

/**
 * How much longer than REFERRAL_TIMEOUT_MS a verify may take in auth: a second before the point of
 * no return (spending the code), checked there, and after it two Redis commands (spend the code,
 * open the session), each bounded by its command timeout.
 */
export const AUTH_VERIFY_OVERHEAD_MS = 5000;

/**
 * How long referral gives itself for work auth asks for and waits REFERRAL_TIMEOUT_MS for (a
 * sign-in, a phone change, a deletion): a second less, so that auth hears the outcome, and at
 * least a second.
 */
export function referralWorkMs(referralTimeoutMs: number): number {
  return Math.max(1000, referralTimeoutMs - 1000);
}
/** referralWorkMs of it plus a second: the least REFERRAL_TIMEOUT_MS production takes. */
export const MIN_PRODUCTION_REFERRAL_TIMEOUT_MS = 2000;

/** Codes shorter than this are refused in production unless OTP_ALLOW_SHORT=true. */
export const MIN_PRODUCTION_OTP_LENGTH = 6;

const list = (value: string): string[] =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

export function loadConfig(
  source: Record<string, string | undefined> = process.env,
  options: LoadConfigOptions = {},
): Config {
  const raw: Record<string, unknown> = {};
  for (const key of ENV_VARIABLES) {
    // No setting means anything by surrounding whitespace, and a secret kept with it would never
    // match: HTTP trims header values, so referral would refuse every internal call of a padded
    // INTERNAL_TOKEN. An empty variable means "not set", as in most twelve-factor tooling.
    const value = source[key]?.trim();
    if (value !== undefined && value !== '') raw[key] = value;
  }
  // A value is quoted back to help the operator, except secrets, and never a URL's password.
  const got = (name: string): string =>
    name in raw && !/SECRET|TOKEN|KEY|PASSWORD|API_ID|TEST_PHONES|CLUSTER_NODES/.test(name)
      ? ` (got ${JSON.stringify(maskUrlPassword(String(raw[name])))})`
      : '';
  const problems: string[] = [];
  // Value.Convert reads `0.5` as 0 and `true` as 1, so OTP_RESEND_SECONDS=0.5 would turn the resend
  // gap off. No whole-number setting takes a negative value: digits only.
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    if (!Type.IsInteger(schema) || !(name in raw) || /^\d+$/.test(String(raw[name]))) continue;
    problems.push(`${name}: must be a whole number${got(name)}`);
    delete raw[name];
  }
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw));
  for (const error of Value.Errors(EnvSchema, converted)) {
    const name = error.instancePath.replace(/^\//, '') || '(environment)';
    problems.push(`${name}: ${error.message}${got(name)}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const env = converted as Env;
  for (const name of [...URL_VARIABLES, ...SMS_URL_VARIABLES, 'CAPTCHA_BASE_URL'] as const) {
    const value = env[name];
    if (value !== undefined && !URL.canParse(value)) problems.push(`${name}: is not a valid URL${got(name)}`);
  }
  const gateway = gatewayEdge(env, problems);
  const trustedProxies = proxyList('TRUSTED_PROXIES', env.TRUSTED_PROXIES, problems);
  const isProduction = env.NODE_ENV === 'production';
  const sms = smsConfig(env, problems, options.smsCredentials === true);
  const phone = {
    defaultRegion: env.DEFAULT_REGION,
    allowedCountries: env.ALLOWED_COUNTRIES === '*' ? ('*' as const) : list(env.ALLOWED_COUNTRIES),
  };
  // ALLOWED_COUNTRIES=UK (Britain is GB) would refuse every number, and an unknown DEFAULT_REGION
  // every number written without its country code.
  for (const [name, codes] of [
    ['DEFAULT_REGION', [phone.defaultRegion]],
    ['ALLOWED_COUNTRIES', phone.allowedCountries === '*' ? [] : phone.allowedCountries],
  ] as const) {
    for (const code of codes) {
      const problem = unknownCountryProblem(name, code);
      if (problem) problems.push(problem);
    }
  }
  const guard = guardConfig(env, phone, options.now ?? Date.now(), problems, options.issuesOtps === true);

  const needs = (name: SecretName) => isProduction && options.requiredSecrets?.includes(name) === true;
  const secret = (name: keyof typeof DEV_SECRETS): string => {
    const value = env[name];
    if (needs(name)) {
      const problem = value === undefined ? 'must be set when NODE_ENV=production' : weakSecretProblem(value);
      if (problem) problems.push(`${name}: ${problem}`);
    }
    return value ?? DEV_SECRETS[name];
  };
  const internalToken = secret('INTERNAL_TOKEN');
  const hmacSecret = secret('OTP_HMAC_SECRET');
  // One leaked secret must not give away the other: INTERNAL_TOKEN is also held by referral and
  // sent on every internal call, and with the HMAC key a stored code falls to a million tries.
  if (
    (needs('INTERNAL_TOKEN') || needs('OTP_HMAC_SECRET')) &&
    env.INTERNAL_TOKEN !== undefined &&
    env.INTERNAL_TOKEN === env.OTP_HMAC_SECRET
  ) {
    problems.push('OTP_HMAC_SECRET: must differ from INTERNAL_TOKEN in production (give each secret its own value)');
  }
  if (needs('JWT_PRIVATE_KEY') && !env.JWT_PRIVATE_KEY) {
    problems.push('JWT_PRIVATE_KEY: must be set to a PEM-encoded P-256 private key when NODE_ENV=production');
  }
  if (isProduction && options.issuesOtps && env.OTP_LENGTH < MIN_PRODUCTION_OTP_LENGTH && !env.OTP_ALLOW_SHORT) {
    problems.push(
      `OTP_LENGTH: ${env.OTP_LENGTH}-digit codes are refused in production: ` +
        `${env.OTP_MAX_ATTEMPTS} guesses break one code in ${10 ** env.OTP_LENGTH / env.OTP_MAX_ATTEMPTS}, ` +
        'and an attacker spread over many phones and addresses ' +
        `makes guesses at scale (see SECURITY.md). Set OTP_LENGTH=${MIN_PRODUCTION_OTP_LENGTH} or more, or ` +
        'OTP_ALLOW_SHORT=true to accept that risk',
    );
  }
  // A sign-in that succeeded must never reach the client as the gateway's timeout. (Tests and
  // development may shorten the gateway's timeout to see it fire.)
  if (isProduction && env.UPSTREAM_TIMEOUT_MS <= env.REFERRAL_TIMEOUT_MS + AUTH_VERIFY_OVERHEAD_MS) {
    problems.push(
      `UPSTREAM_TIMEOUT_MS: must exceed REFERRAL_TIMEOUT_MS + ${AUTH_VERIFY_OVERHEAD_MS} ms ` +
        `(${env.REFERRAL_TIMEOUT_MS + AUTH_VERIFY_OVERHEAD_MS}), ` +
        'the longest a verify can take in auth, or a sign-in that succeeded would be answered as a timeout',
    );
  }
  // Below this, referral's own bound on a sign-in (referralWorkMs, at least a second) is not a
  // second inside auth's wait, and a sign-in referral committed could reach the client as a 503.
  if (isProduction && env.REFERRAL_TIMEOUT_MS < MIN_PRODUCTION_REFERRAL_TIMEOUT_MS) {
    problems.push(
      `REFERRAL_TIMEOUT_MS: production needs at least ${MIN_PRODUCTION_REFERRAL_TIMEOUT_MS}, a second more than ` +
        'referral gives itself for a sign-in',
    );
  }
  const redisClusterNodes = clusterNodes(env.REDIS_CLUSTER_NODES, problems);
  const authInstances = instanceUrls('AUTH_URLS', env.AUTH_URLS, problems);
  const referralInstances = instanceUrls('REFERRAL_URLS', env.REFERRAL_URLS, problems);
  if (env.AUTH_URL !== undefined) instanceUrl('AUTH_URL', env.AUTH_URL.replace(/\/+$/, ''), problems);
  if (env.REFERRAL_URL !== undefined) instanceUrl('REFERRAL_URL', env.REFERRAL_URL.replace(/\/+$/, ''), problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const authUrl = (env.AUTH_URL ?? authInstances[0] ?? `http://127.0.0.1:${env.AUTH_PORT}`).replace(/\/+$/, '');
  const referralUrl = (env.REFERRAL_URL ?? referralInstances[0] ?? `http://127.0.0.1:${env.REFERRAL_PORT}`).replace(
    /\/+$/,
    '',
  );
  return {
    env: env.NODE_ENV,
    isProduction,
    host: env.HOST,
    opsHost: env.OPS_HOST,
    logLevel: env.LOG_LEVEL,
    ports: { gateway: env.GATEWAY_PORT, auth: env.AUTH_PORT, referral: env.REFERRAL_PORT },
    urls: {
      auth: authUrl,
      referral: referralUrl,
      jwks: env.JWKS_URL ?? `${authUrl}/.well-known/jwks.json`,
      jwksAlternates: env.JWKS_URL
        ? []
        : authInstances.filter((url) => url !== authUrl).map((url) => `${url}/.well-known/jwks.json`),
      authInstances: authInstances.length > 0 ? authInstances : [authUrl],
      referralInstances: referralInstances.length > 0 ? referralInstances : [referralUrl],
    },
    jwksRefreshSeconds: env.JWKS_REFRESH_SECONDS,
    legacyPaths: env.LEGACY_PATHS === 'on',
    databaseUrl: env.DATABASE_URL,
    databasePoolSize: env.DATABASE_POOL_SIZE,
    redisUrl: env.REDIS_URL,
    redisClusterNodes,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    phone,
    otp: {
      length: env.OTP_LENGTH,
      ttlSeconds: env.OTP_TTL_SECONDS,
      maxAttempts: env.OTP_MAX_ATTEMPTS,
      resendSeconds: env.OTP_RESEND_SECONDS,
      maxSendsPerHour: env.OTP_MAX_SENDS_PER_HOUR,
      maxFailedPerDay: env.OTP_MAX_FAILED_PER_DAY,
      phoneFailedPerDay: env.OTP_PHONE_FAILED_PER_DAY,
      hmacSecret,
    },
    sendCodeIpPerHour: env.SEND_CODE_IP_PER_HOUR,
    verifyIpFailedPerHour: env.VERIFY_IP_FAILED_PER_HOUR,
    tokens: {
      accessTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
      refreshTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
      privateKeyPem: env.JWT_PRIVATE_KEY,
      extraPublicKeysPem: env.JWT_PUBLIC_KEYS,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
    },
    internalToken,
    trustedProxies,
    corsOrigins: list(env.CORS_ORIGINS),
    upstreamTimeoutMs: env.UPSTREAM_TIMEOUT_MS,
    referralTimeoutMs: env.REFERRAL_TIMEOUT_MS,
    sms,
    guard,
    gateway,
  };
}

/** `10.0.0.1:7000,10.0.0.2:7000` or `[::1]:7000`: seed nodes of a Redis Cluster. */
function clusterNodes(value: string | undefined, problems: string[]): Array<{ host: string; port: number }> {
  return list(value ?? '').flatMap((node, index) => {
    const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(node);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) {
      // Not quoted: an operator may have pasted a Redis URL or a password, which the split at
      // commas can cut anywhere.
      problems.push(`REDIS_CLUSTER_NODES: entry ${index + 1} is not host:port`);
      return [];
    }
    return [{ host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port }];
  });
}

/** `http://auth-1:3001,http://auth-2:3001`: each must be an http(s) URL, none twice. */
function instanceUrls(name: string, value: string | undefined, problems: string[]): string[] {
  const urls = list(value ?? '').map((url) => url.replace(/\/+$/, ''));
  for (const url of urls) instanceUrl(name, url, problems);
  if (new Set(urls).size !== urls.length) problems.push(`${name}: names an instance twice`);
  return urls;
}

/** An instance is an origin: requests are sent to its paths, so a path or query of its own cannot work. */
function instanceUrl(name: string, url: string, problems: string[]): void {
  if (!/^https?:\/\//.test(url) || !URL.canParse(url)) {
    problems.push(`${name}: "${maskUrlPassword(url)}" is not an http(s) URL`);
    return;
  }
  const { pathname, search, hash } = new URL(url);
  if (pathname !== '/' || search !== '' || hash !== '') {
    problems.push(`${name}: "${maskUrlPassword(url)}" must be scheme, host and port only, without a path or query`);
  }
}

const URL_VARIABLES = ['AUTH_URL', 'REFERRAL_URL', 'JWKS_URL', 'DATABASE_URL', 'REDIS_URL'] as const;

/**
 * A list of proxies, checked with the parser Fastify itself uses, so what passes is what is trusted.
 * A range wider than a /8 (IPv4) or a /16 (IPv6, but for the private fc00::/7) is refused: it takes
 * in clients too, and a trusted client names its own address in X-Forwarded-For, a fresh rate
 * limit with every request.
 */
function proxyList(name: 'TRUSTED_PROXIES' | 'GATEWAY_TRUSTED_PROXIES', value: string, problems: string[]): string[] {
  const proxies = list(value);
  try {
    compileTrust(proxies);
  } catch (error) {
    problems.push(`${name}: ${(error as Error).message}; expected addresses or CIDRs, comma-separated`);
    return proxies;
  }
  for (const proxy of proxies) {
    const slash = proxy.lastIndexOf('/');
    if (slash < 0) continue;
    // compileTrust has parsed both parts already; a dotted netmask is an IPv4 one and contiguous.
    const address = ipaddr.parse(proxy.slice(0, slash));
    const mask = proxy.slice(slash + 1);
    let bits = /^\d+$/.test(mask) ? Number(mask) : (ipaddr.IPv4.parse(mask).prefixLengthFromSubnetMask() ?? 0);
    let ipv6 = address.kind() === 'ipv6';
    // proxy-addr matches every IPv4 client against an IPv4-mapped range however it is written
    // (::ffff:0.0.0.0, ::ffff:0:0, 0:0:0:0:0:ffff:0:0): it is as wide as the IPv4 range it maps.
    if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress()) {
      bits -= 96;
      ipv6 = false;
    }
    // IPv6's private range (unique local, fc00::/7) is as private as 10.0.0.0/8.
    const uniqueLocal = ipv6 && bits >= 7 && address.range() === 'uniqueLocal';
    if (bits < (ipv6 ? 16 : 8) && !uniqueLocal) {
      problems.push(
        `${name}: ${proxy} is wider than any balancer's range, and a client inside it could choose its own ` +
          'address in X-Forwarded-For; name the balancers or their subnets',
      );
    }
  }
  return proxies;
}

/** The gateway's edge settings, with the checks that span more than one variable. */
function gatewayEdge(env: Env, problems: string[]): GatewayEdgeConfig {
  const trustedProxies = proxyList('GATEWAY_TRUSTED_PROXIES', env.GATEWAY_TRUSTED_PROXIES, problems);
  if (env.GATEWAY_METRICS_PORT === env.GATEWAY_PORT)
    problems.push('GATEWAY_METRICS_PORT: must differ from GATEWAY_PORT');
  if (env.GATEWAY_HEADERS_TIMEOUT_MS > env.GATEWAY_REQUEST_TIMEOUT_MS) {
    problems.push(
      'GATEWAY_HEADERS_TIMEOUT_MS: must not exceed GATEWAY_REQUEST_TIMEOUT_MS (the headers are part of the request)',
    );
  }
  return {
    trustedProxies,
    metricsPort: env.GATEWAY_METRICS_PORT,
    maxConnections: env.GATEWAY_MAX_CONNECTIONS,
    headersTimeoutMs: env.GATEWAY_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: env.GATEWAY_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: env.GATEWAY_KEEP_ALIVE_TIMEOUT_MS,
    healthIntervalMs: env.GATEWAY_HEALTH_INTERVAL_MS,
    ejectMs: env.GATEWAY_EJECT_SECONDS * 1000,
  };
}
