import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import type { Registry } from 'prom-client';
import { CONVERSION_BLOCK_SECONDS, CONVERSION_MIN_SENDS, type Config } from '@refstack/shared/contracts';
import { SmsBudgetCounter } from './budget.js';
import { createCaptchaVerifier } from './captcha.js';
import { guardMetrics, type GuardMetrics } from './guard-metrics.js';
import { RangeGuard } from './range-guard.js';
import { RiskWindows } from './risk-window.js';
import { smsGuardFactory, type GuardLogger } from './sms-guard.js';

type GuardSettings = Pick<Config, 'guard' | 'otp' | 'redisKeyPrefix'>;

export function rangeGuard(redis: Redis, config: GuardSettings): RangeGuard {
  const { guard } = config;
  return new RangeGuard(redis, config.redisKeyPrefix, {
    prefixDigits: guard.prefixDigits,
    perHour: guard.prefixPerHour,
    minConversion: guard.minConversion,
    minSends: CONVERSION_MIN_SENDS,
    blockMs: CONVERSION_BLOCK_SECONDS * 1000,
    // A code can be verified until it expires: only sends older than that tell about conversion.
    settleMs: config.otp.ttlSeconds * 1000,
  });
}

/** The day's budget, with its gauges and a warning line at 80% and at 100% of each pool. */
export function smsBudget(
  redis: Redis,
  config: GuardSettings,
  metrics: Pick<GuardMetrics, 'budgetUsed' | 'budgetLimit'>,
  log: GuardLogger,
): SmsBudgetCounter {
  for (const [pool, limit] of Object.entries(config.guard.budget.byCountry)) metrics.budgetLimit.set({ pool }, limit);
  if (config.guard.budget.other !== undefined) metrics.budgetLimit.set({ pool: '*' }, config.guard.budget.other);
  return new SmsBudgetCounter(redis, config.redisKeyPrefix, config.guard.budget, {
    onUsage: (pool, used) => metrics.budgetUsed.set({ pool }, used),
    onThreshold: (pool, share, used, limit) =>
      log.warn(
        { pool, used, limit, share },
        share >= 1 ? 'sms budget spent: no more messages today' : `sms budget ${Math.round(share * 100)}% spent`,
      ),
  });
}

export function createSmsGuard(
  redis: Redis,
  config: GuardSettings & Pick<Config, 'sendCodeIpPerHour' | 'phone'>,
  registry: Registry,
  log: GuardLogger,
) {
  const metrics = guardMetrics(registry);
  const ranges = rangeGuard(redis, config);
  const budget = smsBudget(redis, config, metrics, log);
  const captcha = config.guard.captcha.mode === 'off' ? undefined : createCaptchaVerifier(config.guard.captcha);
  const risk = new RiskWindows(redis, config.redisKeyPrefix);
  return smsGuardFactory({ ranges, risk, budget, captcha, config, metrics, log });
}

export type { SmsGuard } from './sms-guard.js';
