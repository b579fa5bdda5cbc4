/**
 * Which process reads each config variable, and so must be given it by the compose file. Every
 * process validates the whole EnvSchema, but a variable changes a process only if its code reads
 * the value; this table says which do, from reading the services' code (services/*\/src and the
 * platform modules they use). The mapped type makes tsc refuse a variable added to the schema
 * without an entry here, and the rule checks the same at run time against ENV_VARIABLES.
 */
import type { Env, ProcessName } from '@refstack/shared/contracts';

/** Set by the compose file or the Dockerfile themselves: the wiring between the containers. */
export const WIRING = 'wiring';
export type Readers = readonly ProcessName[] | typeof WIRING;

const all: Readers = ['auth', 'sms-worker', 'referral', 'gateway'];
// The three HTTP services (createServiceApp bounds their idle sockets by UPSTREAM_TIMEOUT_MS).
const apis: Readers = ['auth', 'referral', 'gateway'];
const auth: Readers = ['auth'];
const worker: Readers = ['sms-worker'];
const referral: Readers = ['referral'];
const gateway: Readers = ['gateway'];
// The Redis users: the gateway holds no Redis connection.
const redisUsers: Readers = ['auth', 'sms-worker', 'referral'];
// auth enqueues (locale), takes receipts and checks at start that every routed provider has its
// credentials; the worker does everything else with them.
const smsBoth: Readers = ['auth', 'sms-worker'];

export const READERS: { readonly [K in keyof Env]-?: Readers } = {
  NODE_ENV: WIRING,
  HOST: WIRING,
  OPS_HOST: WIRING,
  LOG_LEVEL: all,
  // The gateway listens on 8080 in its container; the operator's GATEWAY_PORT is the published port.
  GATEWAY_PORT: WIRING,
  AUTH_PORT: WIRING,
  REFERRAL_PORT: WIRING,
  AUTH_URL: WIRING,
  REFERRAL_URL: WIRING,
  AUTH_URLS: WIRING,
  REFERRAL_URLS: WIRING,
  // auth balances its calls to the referral instances with the gateway's pool settings.
  GATEWAY_HEALTH_INTERVAL_MS: ['gateway', 'auth'],
  GATEWAY_EJECT_SECONDS: ['gateway', 'auth'],
  JWKS_URL: WIRING,
  JWKS_REFRESH_SECONDS: referral,
  DATABASE_URL: WIRING,
  DATABASE_POOL_SIZE: referral,
  REDIS_URL: WIRING,
  REDIS_KEY_PREFIX: redisUsers,
  REDIS_CLUSTER_NODES: redisUsers,
  DEFAULT_REGION: ['auth', 'referral'],
  ALLOWED_COUNTRIES: ['auth', 'referral'],
  // The worker checks at start that its templates fit one SMS with the longest code.
  OTP_LENGTH: smsBoth,
  OTP_TTL_SECONDS: smsBoth,
  OTP_MAX_ATTEMPTS: auth,
  OTP_RESEND_SECONDS: auth,
  OTP_MAX_SENDS_PER_HOUR: auth,
  OTP_MAX_FAILED_PER_DAY: auth,
  OTP_PHONE_FAILED_PER_DAY: auth,
  OTP_ALLOW_SHORT: auth,
  LEGACY_PATHS: apis,
  SEND_CODE_IP_PER_HOUR: auth,
  VERIFY_IP_FAILED_PER_HOUR: auth,
  OTP_HMAC_SECRET: auth,
  // referral keeps ended sessions for an access token's lifetime; the gateway's legacy cookie lasts as long.
  ACCESS_TOKEN_TTL_SECONDS: apis,
  REFRESH_TOKEN_TTL_SECONDS: auth,
  JWT_PRIVATE_KEY: auth,
  JWT_PUBLIC_KEYS: auth,
  JWT_ISSUER: ['auth', 'referral'],
  JWT_AUDIENCE: ['auth', 'referral'],
  INTERNAL_TOKEN: ['auth', 'referral'],
  TRUSTED_PROXIES: auth,
  CORS_ORIGINS: gateway,
  UPSTREAM_TIMEOUT_MS: apis,
  // The gateway reads it only for loadConfig's check against UPSTREAM_TIMEOUT_MS (see TOGETHER).
  REFERRAL_TIMEOUT_MS: apis,
  SMS_PROVIDER: smsBoth,
  SMS_PROVIDERS: smsBoth,
  SMS_ROUTES: smsBoth,
  SMS_CONCURRENCY: worker,
  SMS_PROVIDER_TIMEOUT_MS: worker,
  SMS_CIRCUIT_ERROR_PERCENT: worker,
  SMS_CIRCUIT_MIN_CALLS: worker,
  SMS_CIRCUIT_RESET_SECONDS: worker,
  SMS_DEFAULT_LOCALE: smsBoth,
  SMS_ANDROID_APP_HASH: worker,
  SMS_WEBOTP_DOMAIN: worker,
  SMS_WORKER_METRICS_PORT: worker,
  PUBLIC_BASE_URL: smsBoth,
  SMSRU_API_ID: smsBoth,
  SMSRU_FROM: worker,
  SMSRU_BASE_URL: worker,
  SMSC_LOGIN: smsBoth,
  SMSC_PASSWORD: smsBoth,
  SMSC_SENDER: worker,
  SMSC_BASE_URL: worker,
  TWILIO_ACCOUNT_SID: smsBoth,
  TWILIO_AUTH_TOKEN: smsBoth,
  TWILIO_FROM: smsBoth,
  TWILIO_MESSAGING_SERVICE_SID: smsBoth,
  TWILIO_BASE_URL: worker,
  TELEGRAM_GATEWAY_TOKEN: smsBoth,
  TELEGRAM_GATEWAY_BASE_URL: worker,
  SMS_DENY_PREFIXES: auth,
  SMS_PREFIX_DIGITS: auth,
  SMS_PREFIX_PER_HOUR: auth,
  SMS_MIN_CONVERSION: auth,
  // Inviter notices count against the same daily budget as login codes.
  SMS_DAILY_BUDGET: smsBoth,
  CAPTCHA_PROVIDER: auth,
  CAPTCHA_SECRET: auth,
  CAPTCHA_BASE_URL: auth,
  CAPTCHA_MODE: auth,
  CAPTCHA_FAIL_OPEN: auth,
  CAPTCHA_TIMEOUT_MS: auth,
  TEST_PHONES: auth,
  INVITE_NOTICE_WINDOW_SECONDS: referral,
  GATEWAY_TRUSTED_PROXIES: gateway,
  GATEWAY_METRICS_PORT: gateway,
  GATEWAY_MAX_CONNECTIONS: gateway,
  GATEWAY_HEADERS_TIMEOUT_MS: gateway,
  GATEWAY_REQUEST_TIMEOUT_MS: gateway,
  GATEWAY_KEEP_ALIVE_TIMEOUT_MS: gateway,
};

/** The operator's name for a variable, where the compose file takes it from another one. */
export const OPERATOR_NAME: { readonly [K in keyof Env]?: string } = {
  // Auth's TRUSTED_PROXIES is the compose network, not the operator's balancers (GATEWAY_TRUSTED_PROXIES).
  TRUSTED_PROXIES: 'INTERNAL_TRUSTED_PROXIES',
};

/**
 * Variables loadConfig checks against each other: a process given one of them must be given the
 * others, or it would check the operator's value against a default and refuse a valid pair.
 */
export const TOGETHER: readonly (readonly (keyof Env)[])[] = [
  ['UPSTREAM_TIMEOUT_MS', 'REFERRAL_TIMEOUT_MS'],
  ['GATEWAY_HEADERS_TIMEOUT_MS', 'GATEWAY_REQUEST_TIMEOUT_MS'],
];
