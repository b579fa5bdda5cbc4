import { Type } from 'typebox';
import type { Env } from './config.js';
import { unknownCountryProblem } from './phone-country.js';
import { SMS_LOCALES, type SmsLocale } from './sms-locale.js';

/** Where a message can go. `console` prints it; the others are the providers' HTTP APIs. */
export const SMS_PROVIDER_NAMES = ['console', 'smsru', 'smsc', 'twilio', 'telegram'] as const;
export type SmsProviderName = (typeof SMS_PROVIDER_NAMES)[number];

const optionalText = () => Type.Optional(Type.String({ minLength: 1, maxLength: 4096 }));
const baseUrl = (url: string) => Type.String({ pattern: '^https?://', default: url });

/** The environment variables of SMS delivery; part of the one EnvSchema in config.ts. */
export const SMS_ENV = {
  /** The older, single-provider name of SMS_PROVIDERS; used when SMS_PROVIDERS is not set. */
  // Checked by name in smsConfig, which can say which name is unknown.
  SMS_PROVIDER: Type.Optional(Type.String({ maxLength: 256 })),
  SMS_PROVIDERS: Type.Optional(Type.String({ maxLength: 256 })),
  SMS_ROUTES: Type.Optional(Type.String({ maxLength: 1024 })),
  SMS_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
  SMS_PROVIDER_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5000 }),
  SMS_CIRCUIT_ERROR_PERCENT: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
  SMS_CIRCUIT_MIN_CALLS: Type.Integer({ minimum: 1, maximum: 10_000, default: 5 }),
  SMS_CIRCUIT_RESET_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 30 }),
  SMS_DEFAULT_LOCALE: Type.Union(
    SMS_LOCALES.map((l) => Type.Literal(l)),
    { default: 'en' },
  ),
  // The Android SMS Retriever hash: 11 characters of base64 computed from the app's signing key.
  SMS_ANDROID_APP_HASH: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]{11}$' })),
  // A host name (no scheme, no port): the origin the WebOTP / iOS domain-bound line names.
  SMS_WEBOTP_DOMAIN: Type.Optional(
    Type.String({ pattern: '^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$' }),
  ),
  SMS_WORKER_METRICS_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 9092 }),
  PUBLIC_BASE_URL: Type.Optional(Type.String({ pattern: '^https?://[^/?#]+(/[^?#]*)?$' })),
  SMSRU_API_ID: optionalText(),
  SMSRU_FROM: optionalText(),
  SMSRU_BASE_URL: baseUrl('https://sms.ru'),
  SMSC_LOGIN: optionalText(),
  SMSC_PASSWORD: optionalText(),
  SMSC_SENDER: optionalText(),
  SMSC_BASE_URL: baseUrl('https://smsc.ru'),
  TWILIO_ACCOUNT_SID: Type.Optional(Type.String({ pattern: '^AC[0-9a-fA-F]{32}$' })),
  TWILIO_AUTH_TOKEN: optionalText(),
  TWILIO_FROM: optionalText(),
  TWILIO_MESSAGING_SERVICE_SID: Type.Optional(Type.String({ pattern: '^MG[0-9a-fA-F]{32}$' })),
  TWILIO_BASE_URL: baseUrl('https://api.twilio.com'),
  TELEGRAM_GATEWAY_TOKEN: optionalText(),
  TELEGRAM_GATEWAY_BASE_URL: baseUrl('https://gatewayapi.telegram.org'),
};

/** Every base URL variable, checked as a URL at start like the other service URLs. */
export const SMS_URL_VARIABLES = [
  'PUBLIC_BASE_URL',
  'SMSRU_BASE_URL',
  'SMSC_BASE_URL',
  'TWILIO_BASE_URL',
  'TELEGRAM_GATEWAY_BASE_URL',
] as const;

/** The providers, in order, for each country (ISO code) and for every other one (`*`). */
export interface SmsRoutes {
  byCountry: Readonly<Record<string, readonly SmsProviderName[]>>;
  fallback: readonly SmsProviderName[];
}

export interface SmsConfig {
  routes: SmsRoutes;
  /** Every provider some route names, each once. */
  providers: readonly SmsProviderName[];
  concurrency: number;
  providerTimeoutMs: number;
  circuit: { errorPercent: number; minCalls: number; resetSeconds: number };
  defaultLocale: SmsLocale;
  androidAppHash: string | undefined;
  webOtpDomain: string | undefined;
  /** The SMS worker's /metrics port; 0 serves none. */
  metricsPort: number;
  /** Where providers reach the gateway from outside: builds the delivery-receipt URLs. */
  publicBaseUrl: string | undefined;
  smsru: { apiId: string | undefined; from: string | undefined; baseUrl: string };
  smsc: { login: string | undefined; password: string | undefined; sender: string | undefined; baseUrl: string };
  twilio: {
    accountSid: string | undefined;
    authToken: string | undefined;
    from: string | undefined;
    messagingServiceSid: string | undefined;
    baseUrl: string;
  };
  telegram: { token: string | undefined; baseUrl: string };
}

const trimSlash = (url: string) => url.replace(/\/+$/, '');

function providerList(name: string, value: string, problems: string[]): SmsProviderName[] {
  const names = value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  const unknown = names.filter((item) => !(SMS_PROVIDER_NAMES as readonly string[]).includes(item));
  if (unknown.length > 0) {
    problems.push(`${name}: unknown provider ${unknown.join(', ')}; known: ${SMS_PROVIDER_NAMES.join(', ')}`);
  }
  if (names.length === 0) problems.push(`${name}: names no provider`);
  if (new Set(names).size !== names.length) problems.push(`${name}: names a provider twice`);
  return names.filter((item): item is SmsProviderName => !unknown.includes(item));
}

/** `RU:telegram,smsru;KZ:smsc;*:twilio`: countries (ISO codes) or `*`, each with its providers in order. */
export function parseSmsRoutes(value: string, fallback: readonly SmsProviderName[], problems: string[]): SmsRoutes {
  const byCountry: Record<string, SmsProviderName[]> = {};
  let other: SmsProviderName[] | undefined;
  for (const entry of value.split(';').map((item) => item.trim())) {
    if (entry === '') continue;
    const match = /^(\*|[A-Z]{2})\s*:\s*(.*)$/.exec(entry);
    if (!match) {
      problems.push(`SMS_ROUTES: "${entry}" is not COUNTRY:provider,provider (COUNTRY an ISO code or *)`);
      continue;
    }
    const [, country = '', list = ''] = match;
    const unknown = country === '*' ? undefined : unknownCountryProblem('SMS_ROUTES', country);
    if (unknown) problems.push(unknown);
    if (country in byCountry || (country === '*' && other)) {
      problems.push(`SMS_ROUTES: ${country} is routed twice`);
      continue;
    }
    const providers = providerList(`SMS_ROUTES (${country})`, list, problems);
    if (country === '*') other = providers;
    else byCountry[country] = providers;
  }
  return { byCountry, fallback: other ?? fallback };
}

/** Providers that carry login codes only: Telegram Gateway sends a code, in its own words. */
export const CODES_ONLY_PROVIDERS: ReadonlySet<SmsProviderName> = new Set(['telegram']);

/** What each provider cannot work without. */
const CREDENTIALS: Record<Exclude<SmsProviderName, 'console'>, (env: Env) => string[]> = {
  smsru: (env) => (env.SMSRU_API_ID ? [] : ['SMSRU_API_ID']),
  smsc: (env) => [...(env.SMSC_LOGIN ? [] : ['SMSC_LOGIN']), ...(env.SMSC_PASSWORD ? [] : ['SMSC_PASSWORD'])],
  twilio: (env) => [
    ...(env.TWILIO_ACCOUNT_SID ? [] : ['TWILIO_ACCOUNT_SID']),
    ...(env.TWILIO_AUTH_TOKEN ? [] : ['TWILIO_AUTH_TOKEN']),
    ...(env.TWILIO_FROM || env.TWILIO_MESSAGING_SERVICE_SID ? [] : ['TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID']),
  ],
  telegram: (env) => (env.TELEGRAM_GATEWAY_TOKEN ? [] : ['TELEGRAM_GATEWAY_TOKEN']),
};

/**
 * SMS delivery settings. With `requireCredentials` (the processes that send or take receipts), a
 * provider that a route names but whose credentials are missing is a configuration error, in every
 * environment: such a route would fail every message.
 */
export function smsConfig(env: Env, problems: string[], requireCredentials: boolean): SmsConfig {
  const fallback = providerList(
    env.SMS_PROVIDERS !== undefined ? 'SMS_PROVIDERS' : 'SMS_PROVIDER',
    env.SMS_PROVIDERS ?? env.SMS_PROVIDER ?? 'console',
    problems,
  );
  const routes = env.SMS_ROUTES ? parseSmsRoutes(env.SMS_ROUTES, fallback, problems) : { byCountry: {}, fallback };
  const providers = [...new Set([...Object.values(routes.byCountry).flat(), ...routes.fallback])];
  // Such a route would take every login code and retry every notice (a moved account, an activated
  // invite) for a day without ever sending it.
  const fallbackName = /(^|;)\s*\*\s*:/.test(env.SMS_ROUTES ?? '')
    ? 'SMS_ROUTES (*)'
    : env.SMS_PROVIDERS !== undefined
      ? 'SMS_PROVIDERS'
      : 'SMS_PROVIDER';
  for (const [name, list] of [
    ...Object.entries(routes.byCountry).map(([country, list]) => [`SMS_ROUTES (${country})`, list] as const),
    [fallbackName, routes.fallback] as const,
  ]) {
    if (list.length > 0 && list.every((provider) => CODES_ONLY_PROVIDERS.has(provider)))
      problems.push(
        `${name}: ${list.join(', ')} carries login codes only; add an SMS provider after it for the notices`,
      );
  }
  if (requireCredentials) {
    for (const provider of providers) {
      if (provider === 'console') continue;
      const missing = CREDENTIALS[provider](env);
      if (missing.length > 0) problems.push(`SMS provider ${provider} is routed to but ${missing.join(', ')} not set`);
    }
  }
  return {
    routes,
    providers,
    concurrency: env.SMS_CONCURRENCY,
    providerTimeoutMs: env.SMS_PROVIDER_TIMEOUT_MS,
    circuit: {
      errorPercent: env.SMS_CIRCUIT_ERROR_PERCENT,
      minCalls: env.SMS_CIRCUIT_MIN_CALLS,
      resetSeconds: env.SMS_CIRCUIT_RESET_SECONDS,
    },
    defaultLocale: env.SMS_DEFAULT_LOCALE,
    androidAppHash: env.SMS_ANDROID_APP_HASH,
    webOtpDomain: env.SMS_WEBOTP_DOMAIN,
    metricsPort: env.SMS_WORKER_METRICS_PORT,
    publicBaseUrl: env.PUBLIC_BASE_URL === undefined ? undefined : trimSlash(env.PUBLIC_BASE_URL),
    smsru: { apiId: env.SMSRU_API_ID, from: env.SMSRU_FROM, baseUrl: trimSlash(env.SMSRU_BASE_URL) },
    smsc: {
      login: env.SMSC_LOGIN,
      password: env.SMSC_PASSWORD,
      sender: env.SMSC_SENDER,
      baseUrl: trimSlash(env.SMSC_BASE_URL),
    },
    twilio: {
      accountSid: env.TWILIO_ACCOUNT_SID,
      authToken: env.TWILIO_AUTH_TOKEN,
      from: env.TWILIO_FROM,
      messagingServiceSid: env.TWILIO_MESSAGING_SERVICE_SID,
      baseUrl: trimSlash(env.TWILIO_BASE_URL),
    },
    telegram: { token: env.TELEGRAM_GATEWAY_TOKEN, baseUrl: trimSlash(env.TELEGRAM_GATEWAY_BASE_URL) },
  };
}

/** The providers a message to a number of `country` goes through, in order. */
export function providersFor(routes: SmsRoutes, country: string): readonly SmsProviderName[] {
  return routes.byCountry[country] ?? routes.fallback;
}
