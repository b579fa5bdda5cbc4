import { Type } from 'typebox';
import type { Env } from './config.js';
import { normalizePhone, type PhonePolicy } from './phone.js';
import { unknownCountryProblem } from './phone-country.js';

/** The bot challenges send-code can require, each verified with its provider's siteverify API. */
export const CAPTCHA_PROVIDERS = ['turnstile', 'smartcaptcha', 'hcaptcha'] as const;
export type CaptchaProviderName = (typeof CAPTCHA_PROVIDERS)[number];

/** Where each provider's verification API lives unless CAPTCHA_BASE_URL says otherwise. */
export const CAPTCHA_DEFAULT_BASE_URLS: Record<CaptchaProviderName, string> = {
  turnstile: 'https://challenges.cloudflare.com',
  smartcaptcha: 'https://smartcaptcha.yandexcloud.net',
  hcaptcha: 'https://api.hcaptcha.com',
};

/** The environment variables of the SMS pumping guard; part of the one EnvSchema in config.ts. */
export const GUARD_ENV = {
  SMS_DENY_PREFIXES: Type.Optional(Type.String({ maxLength: 4096 })),
  SMS_PREFIX_DIGITS: Type.Integer({ minimum: 1, maximum: 8, default: 4 }),
  SMS_PREFIX_PER_HOUR: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
  SMS_MIN_CONVERSION: Type.Number({ minimum: 0, maximum: 1, default: 0.2 }),
  SMS_DAILY_BUDGET: Type.Optional(Type.String({ maxLength: 4096 })),
  CAPTCHA_PROVIDER: Type.Optional(Type.Union(CAPTCHA_PROVIDERS.map((name) => Type.Literal(name)))),
  CAPTCHA_SECRET: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  CAPTCHA_BASE_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  CAPTCHA_MODE: Type.Union([Type.Literal('always'), Type.Literal('risk'), Type.Literal('off')], { default: 'off' }),
  CAPTCHA_FAIL_OPEN: Type.Boolean({ default: false }),
  CAPTCHA_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 30_000, default: 3000 }),
  TEST_PHONES: Type.Optional(Type.String({ maxLength: 16_384 })),
  INVITE_NOTICE_WINDOW_SECONDS: Type.Integer({ minimum: 0, maximum: 7 * 86_400, default: 3600 }),
};

/** Sends over 24 h below which a range's conversion says nothing yet. */
export const CONVERSION_MIN_SENDS = 20;
/** How long a range whose codes are not used stays blocked. */
export const CONVERSION_BLOCK_SECONDS = 24 * 3600;

export interface CaptchaConfig {
  provider: CaptchaProviderName | undefined;
  secret: string | undefined;
  /** The provider's API origin, without a trailing slash. */
  baseUrl: string;
  mode: 'always' | 'risk' | 'off';
  /** When the provider cannot answer: true lets the request through, false refuses it with 503. */
  failOpen: boolean;
  timeoutMs: number;
}

/** A number whose code is fixed (for app-store reviewers): never sent, still attempt-limited. */
export interface TestPhone {
  phone: string;
  code: string;
  /** The last UTC day it works, `YYYY-MM-DD`. */
  until: string;
  /** Milliseconds since the epoch at which it stops working (the end of `until`). */
  expiresAt: number;
}

/** Daily message budgets: one per country named, one shared by every other country (`*`). */
export interface SmsBudget {
  byCountry: Readonly<Record<string, number>>;
  /** Shared by the countries without their own entry; undefined: no limit for them. */
  other: number | undefined;
}

export interface GuardConfig {
  denyPrefixes: readonly string[];
  prefixDigits: number;
  prefixPerHour: number;
  minConversion: number;
  budget: SmsBudget;
  captcha: CaptchaConfig;
  testPhones: ReadonlyMap<string, TestPhone>;
  inviteNoticeWindowSeconds: number;
}

const E164_PREFIX = /^\+[1-9]\d{0,14}$/;

function denyPrefixes(value: string | undefined, problems: string[]): string[] {
  const prefixes = (value ?? '')
    .split(',')
    .map((item) => item.trim().replace(/[\s-]/g, ''))
    .filter((item) => item.length > 0);
  for (const prefix of prefixes) {
    if (!E164_PREFIX.test(prefix))
      problems.push(`SMS_DENY_PREFIXES: "${prefix}" is not an E.164 prefix (+ and digits)`);
  }
  return prefixes;
}

/** `50000`, or `RU:50000;*:2000`: messages per UTC day, per country (ISO code) and for all others (`*`). */
export function parseSmsBudget(value: string | undefined, problems: string[]): SmsBudget {
  const byCountry: Record<string, number> = {};
  let other: number | undefined;
  for (const entry of (value ?? '').split(';').map((item) => item.trim())) {
    if (entry === '') continue;
    const match = /^(?:(\*|[A-Z]{2})\s*:\s*)?(\d{1,12})$/.exec(entry);
    if (!match) {
      problems.push(`SMS_DAILY_BUDGET: "${entry}" is not COUNTRY:messages (COUNTRY an ISO code or *) or a number`);
      continue;
    }
    const country = match[1] ?? '*';
    const amount = Number(match[2]);
    const unknown = country === '*' ? undefined : unknownCountryProblem('SMS_DAILY_BUDGET', country);
    if (unknown) problems.push(unknown);
    if (country === '*') {
      if (other !== undefined) problems.push('SMS_DAILY_BUDGET: the budget of * is given twice');
      other = amount;
    } else {
      if (country in byCountry) problems.push(`SMS_DAILY_BUDGET: ${country} is given twice`);
      byCountry[country] = amount;
    }
  }
  return { byCountry, other };
}

/** The end of a UTC day `YYYY-MM-DD`, or undefined when it is no such day. */
function endOfUtcDay(day: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const start = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== day) return undefined;
  return start + 86_400_000;
}

/**
 * `+79990000001:123456@2027-06-30,...`. Every entry needs an expiry day, a code of OTP_LENGTH
 * digits and a number the API accepts; an entry past its day refuses to load, so a forgotten
 * reviewer number cannot stay open for good.
 */
export function parseTestPhones(
  value: string | undefined,
  otpLength: number,
  policy: PhonePolicy,
  now: number,
  problems: string[],
): Map<string, TestPhone> {
  const phones = new Map<string, TestPhone>();
  for (const entry of (value ?? '').split(',').map((item) => item.trim())) {
    if (entry === '') continue;
    const match = /^(\+\d{7,15}):(\d+)@(\S+)$/.exec(entry);
    // The entry is never quoted back: it holds a code.
    const at = `TEST_PHONES entry ${phones.size + 1}`;
    if (!match) {
      problems.push(`${at}: is not +E164:CODE@YYYY-MM-DD (the expiry day is required)`);
      continue;
    }
    const [, number = '', code = '', until = ''] = match;
    const normalized = normalizePhone(number, policy);
    const expiresAt = endOfUtcDay(until);
    if (!normalized.ok) problems.push(`${at}: ${number} is not a number the API accepts (${normalized.reason})`);
    else if (code.length !== otpLength) problems.push(`${at}: the code must have OTP_LENGTH (${otpLength}) digits`);
    else if (expiresAt === undefined) problems.push(`${at}: "${until}" is not a day (YYYY-MM-DD)`);
    else if (expiresAt <= now) problems.push(`${at}: ${number} expired at the end of ${until}; remove or renew it`);
    else if (phones.has(normalized.e164)) problems.push(`${at}: ${number} is listed twice`);
    else phones.set(normalized.e164, { phone: normalized.e164, code, until, expiresAt });
  }
  return phones;
}

export function guardConfig(
  env: Env,
  phone: PhonePolicy,
  now: number,
  problems: string[],
  requireCaptchaSecret: boolean,
): GuardConfig {
  const provider = env.CAPTCHA_PROVIDER;
  if (env.CAPTCHA_MODE !== 'off' && provider === undefined) {
    problems.push(`CAPTCHA_MODE=${env.CAPTCHA_MODE} needs CAPTCHA_PROVIDER (${CAPTCHA_PROVIDERS.join(', ')})`);
  }
  if (requireCaptchaSecret && env.CAPTCHA_MODE !== 'off' && env.CAPTCHA_SECRET === undefined) {
    problems.push(`CAPTCHA_MODE=${env.CAPTCHA_MODE} needs CAPTCHA_SECRET`);
  }
  const baseUrl = env.CAPTCHA_BASE_URL ?? (provider ? CAPTCHA_DEFAULT_BASE_URLS[provider] : 'http://127.0.0.1');
  return {
    denyPrefixes: denyPrefixes(env.SMS_DENY_PREFIXES, problems),
    prefixDigits: env.SMS_PREFIX_DIGITS,
    prefixPerHour: env.SMS_PREFIX_PER_HOUR,
    minConversion: env.SMS_MIN_CONVERSION,
    budget: parseSmsBudget(env.SMS_DAILY_BUDGET, problems),
    captcha: {
      provider,
      secret: env.CAPTCHA_SECRET,
      baseUrl: baseUrl.replace(/\/+$/, ''),
      mode: env.CAPTCHA_MODE,
      failOpen: env.CAPTCHA_FAIL_OPEN,
      timeoutMs: env.CAPTCHA_TIMEOUT_MS,
    },
    testPhones: parseTestPhones(env.TEST_PHONES, env.OTP_LENGTH, phone, now, problems),
    inviteNoticeWindowSeconds: env.INVITE_NOTICE_WINDOW_SECONDS,
  };
}
