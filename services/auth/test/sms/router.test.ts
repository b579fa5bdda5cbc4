import t, { type Test } from 'tap';
import { Registry } from 'prom-client';
import type { SmsProviderName } from '@refstack/shared/contracts';
import { SmsRecipientError, SmsTransientError, type SmsProvider } from '../../src/sms/providers/provider.js';
import { SmsRouter } from '../../src/sms/router.js';
import { smsProviderMetrics } from '../../src/sms/sms-metrics.js';
import { loginMessage } from './providers/provider-kit.js';
import { metricValue } from './sms-test-worker.js';

/** A provider that fails every call with `error`, and counts its calls. */
function failing(name: SmsProviderName, error: () => Error) {
  const provider: SmsProvider & { calls: number } = {
    name,
    calls: 0,
    carries: () => true,
    send() {
      provider.calls += 1;
      return Promise.reject(error());
    },
  };
  return provider;
}

/** The route `RU:telegram,smsru` with a circuit that opens past half of 5 calls; smsru takes everything. */
function router(t: Test, first: SmsProvider, errorPercent = 50) {
  const registry = new Registry();
  const smsru: SmsProvider = { name: 'smsru', carries: () => true, send: () => Promise.resolve({}) };
  const log = { info: () => undefined, warn: () => undefined };
  const instance = new SmsRouter({
    providers: new Map([
      [first.name, first],
      [smsru.name, smsru],
    ]),
    config: {
      routes: { byCountry: { RU: [first.name, 'smsru'] }, fallback: ['smsru'] },
      providerTimeoutMs: 1000,
      circuit: { errorPercent, minCalls: 5, resetSeconds: 30 },
    },
    metrics: smsProviderMetrics(registry),
    log,
  });
  t.teardown(() => instance.close());
  return { router: instance, registry };
}

t.test('recipients without Telegram move on to SMS but leave its circuit closed', async (t) => {
  const telegram = failing(
    'telegram',
    () => new SmsRecipientError('telegram: PHONE_NUMBER_NOT_FOUND', 'PHONE_NUMBER_NOT_FOUND'),
  );
  const { router: route, registry } = router(t, telegram);
  for (let i = 0; i < 20; i++) {
    t.match(await route.send(loginMessage({ id: String(i) })), { result: 'sent', provider: 'smsru' });
  }
  t.equal(telegram.calls, 20, 'Telegram is still asked for every code');
  t.notOk(route.isOpen('telegram'));
  t.equal(
    await metricValue(registry, 'sms_provider_attempts_total', { provider: 'telegram', outcome: 'unreachable' }),
    20,
  );
  t.equal(await metricValue(registry, 'sms_provider_attempts_total', { provider: 'telegram', outcome: 'failed' }), 0);
});

t.test('a provider that really fails still opens its circuit', async (t) => {
  const telegram = failing('telegram', () => new SmsTransientError('telegram: HTTP 500', 'HTTP 500'));
  const { router: route, registry } = router(t, telegram);
  for (let i = 0; i < 20; i++) {
    t.match(await route.send(loginMessage({ id: String(i) })), { result: 'sent', provider: 'smsru' });
  }
  t.ok(route.isOpen('telegram'));
  t.equal(telegram.calls, 5, 'skipped once its circuit opened');
  t.equal(await metricValue(registry, 'sms_provider_circuit_opened_total', { provider: 'telegram' }), 1);
});

t.test('the circuit opens at its share of failed calls, not only past it', async (t) => {
  for (const [percent, failEvery] of [
    [100, 1],
    [50, 2],
  ] as const) {
    await t.test(`SMS_CIRCUIT_ERROR_PERCENT=${percent}`, async (t) => {
      let call = 0;
      const telegram: SmsProvider & { calls: number } = {
        name: 'telegram',
        calls: 0,
        carries: () => true,
        send() {
          telegram.calls += 1;
          call += 1;
          return call % failEvery === 0
            ? Promise.reject(new SmsTransientError('telegram: HTTP 500', 'HTTP 500'))
            : Promise.resolve({});
        },
      };
      const { router: route } = router(t, telegram, percent);
      for (let i = 0; i < 6; i++) await route.send(loginMessage({ id: String(i) }));
      t.ok(route.isOpen('telegram'), `${percent}% of the calls failed: open`);
    });
  }
});
