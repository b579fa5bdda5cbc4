import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The SMS funnel, by provider and country: what the worker handed to a provider (`sms_sent_total`),
 * what reached the phone (`sms_delivered_total`, from receipts), what failed (`sms_failed_total`:
 * refused, expired unsent, or reported undelivered) and the codes people then typed in
 * (`sms_codes_verified_total`). The worker counts sends and refusals; the auth API counts receipts
 * and verified codes; Prometheus adds them up by label. Conversion of a provider:
 *
 *   sum by (provider) (rate(sms_codes_verified_total[1h]))
 *     / sum by (provider) (rate(sms_sent_total{kind="otp"}[1h]))
 */
export interface SmsFunnelMetrics {
  sent: Counter<'provider' | 'country' | 'kind'>;
  delivered: Counter<'provider' | 'country' | 'kind'>;
  failed: Counter<'provider' | 'country' | 'kind'>;
  verified: Counter<'provider' | 'country'>;
}

export function smsFunnelMetrics(registry: Registry): SmsFunnelMetrics {
  const labelNames = ['provider', 'country', 'kind'] as const;
  return {
    sent: new Counter({
      name: 'sms_sent_total',
      help: 'SMS a provider accepted, by provider, recipient country and kind (otp, invite_activated)',
      labelNames,
      registers: [registry],
    }),
    delivered: new Counter({
      name: 'sms_delivered_total',
      help: 'SMS a provider reported delivered to the phone',
      labelNames,
      registers: [registry],
    }),
    failed: new Counter({
      name: 'sms_failed_total',
      help:
        'SMS refused for the number, expired before any provider took them (provider "none"), ' +
        'or reported undelivered',
      labelNames,
      registers: [registry],
    }),
    verified: new Counter({
      name: 'sms_codes_verified_total',
      help: 'Login codes verified, by the provider that carried the code and the country',
      labelNames: ['provider', 'country'] as const,
      registers: [registry],
    }),
  };
}

/** How the providers behave: each call's outcome and each circuit's state. */
export interface SmsProviderMetrics {
  attempts: Counter<'provider' | 'outcome'>;
  circuitState: Gauge<'provider'>;
  circuitOpened: Counter<'provider'>;
}

/** Circuit states as the gauge shows them. */
export const CIRCUIT_STATE = { closed: 0, half_open: 1, open: 2 } as const;

export function smsProviderMetrics(registry: Registry): SmsProviderMetrics {
  return {
    attempts: new Counter({
      name: 'sms_provider_attempts_total',
      help:
        'Calls to SMS providers by outcome: accepted, refused (for good), failed (try the next), timeout, ' +
        'unreachable (this recipient through this provider: try the next), circuit_open (skipped)',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    circuitState: new Gauge({
      name: 'sms_provider_circuit_state',
      help: 'Circuit breaker of each SMS provider: 0 closed, 1 half-open (one trial call), 2 open (skipped)',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    circuitOpened: new Counter({
      name: 'sms_provider_circuit_opened_total',
      help: 'Times the circuit breaker of an SMS provider opened',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
  };
}
