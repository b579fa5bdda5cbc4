import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * What the SMS pumping guard refused and why, and how much of the day's budget is spent. An alert on
 * `sms_guard_refusals_total{reason=~"prefix_.*"}` rising, or on `sms_budget_used / sms_budget_limit`
 * above 0.8, is the early sign of pumping.
 */
export interface GuardMetrics {
  refusals: Counter<'reason'>;
  riskSignals: Counter<'signal'>;
  captchaUnavailable: Counter<'provider' | 'outcome'>;
  budgetUsed: Gauge<'pool'>;
  budgetLimit: Gauge<'pool'>;
}

export function guardMetrics(registry: Registry): GuardMetrics {
  return {
    refusals: new Counter({
      name: 'sms_guard_refusals_total',
      help:
        'Codes not sent because of the SMS guard, by reason (destination_number_type, destination_deny_prefix, ' +
        'prefix_velocity, prefix_low_conversion, budget_exhausted, captcha_required, captcha_invalid, ' +
        'captcha_expired, captcha_unavailable)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    riskSignals: new Counter({
      name: 'sms_guard_risk_signals_total',
      help: 'Send-code calls that had to pass a challenge in CAPTCHA_MODE=risk, by the first signal that fired',
      labelNames: ['signal'],
      registers: [registry],
    }),
    captchaUnavailable: new Counter({
      name: 'captcha_unavailable_total',
      help: 'Challenges the provider could not check, by provider and what was done (let_through or refused)',
      labelNames: ['provider', 'outcome'],
      registers: [registry],
    }),
    budgetUsed: new Gauge({
      name: 'sms_budget_used',
      help: 'Messages counted against the day’s budget (UTC), by pool (a country or *)',
      labelNames: ['pool'],
      registers: [registry],
    }),
    budgetLimit: new Gauge({
      name: 'sms_budget_limit',
      help: 'The day’s message budget (SMS_DAILY_BUDGET), by pool',
      labelNames: ['pool'],
      registers: [registry],
    }),
  };
}
