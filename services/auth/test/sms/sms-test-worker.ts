import type { WorkerOptions } from 'bullmq';
import { Registry } from 'prom-client';
import { queuePrefix } from '@refstack/shared/contracts';
import { connectRedis } from '@refstack/shared/platform';
import { TEST_REDIS_URL, testConfig, type Teardownable } from '@refstack/shared/testing';
import { guardMetrics } from '../../src/guard/guard-metrics.js';
import { smsBudget } from '../../src/guard/index.js';
import { OtpStore } from '../../src/otp/otp-store.js';
import { InviteDigests } from '../../src/sms/invite-digest.js';
import { MessageLog } from '../../src/sms/message-log.js';
import { consoleSmsProvider } from '../../src/sms/providers/console.js';
import type { SmsProvider } from '../../src/sms/providers/provider.js';
import { SmsRouter } from '../../src/sms/router.js';
import { createSmsWorker } from '../../src/sms/sms-consumer.js';
import { smsFunnelMetrics, smsProviderMetrics } from '../../src/sms/sms-metrics.js';

export interface LoggedLine {
  level: 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

/**
 * An SMS worker as `src/sms-worker.ts` builds it, on real Redis under the test's key prefix: the
 * console provider printing into `printed`, or the providers given (routed in that order), with a
 * registry of its own and its log lines kept.
 */
export async function startTestSmsWorker(
  t: Teardownable,
  options: {
    prefix: string;
    providers?: SmsProvider[];
    env?: Record<string, string>;
    now?: () => number;
    workerOptions?: Partial<WorkerOptions>;
  },
) {
  const printed: string[] = [];
  const providers = new Map(
    (options.providers ?? [consoleSmsProvider((line) => printed.push(line))]).map((p) => [p.name, p] as const),
  );
  const config = testConfig({
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: options.prefix,
    SMS_PROVIDERS: [...providers.keys()].join(','),
    SMS_CONCURRENCY: '4',
    ...options.env,
  });
  const lines: LoggedLine[] = [];
  const logAt =
    (level: LoggedLine['level']) =>
    (fields: object, msg: string): void => {
      lines.push({ level, msg, fields: fields as Record<string, unknown> });
    };
  const log = { info: logAt('info'), warn: logAt('warn'), error: logAt('error') };
  // REDIS_CLUSTER_NODES among `env` puts the worker on a cluster, as it would the real one.
  const [consumer, store] = await Promise.all([connectRedis(config, 'worker'), connectRedis(config, 'api')]);
  const registry = new Registry();
  const router = new SmsRouter({
    providers,
    config: config.sms,
    metrics: smsProviderMetrics(registry),
    log,
    ...(options.now ? { now: options.now } : {}),
  });
  const messages = new MessageLog(store, options.prefix);
  const worker = createSmsWorker({
    connection: consumer,
    prefix: queuePrefix(options.prefix),
    router,
    messages,
    codes: new OtpStore(store, options.prefix),
    funnel: smsFunnelMetrics(registry),
    digests: new InviteDigests(store, options.prefix, smsBudget(store, config, guardMetrics(registry), log)),
    sms: config.sms,
    log,
    ...(options.now ? { now: options.now } : {}),
    ...(options.workerOptions ? { workerOptions: options.workerOptions } : {}),
  });
  t.teardown(async () => {
    await worker.close();
    router.close();
    consumer.disconnect();
    store.disconnect();
  });
  await worker.waitUntilReady();
  return { worker, printed, lines, registry, messages, router, config, store };
}

/** The value of one sample of a metric in a registry (0 when absent). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}
