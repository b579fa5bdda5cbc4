import { pino } from 'pino';
import { loadConfig, processSpec, queuePrefix } from '@refstack/shared/contracts';
// Module by module, not the platform barrel: the worker serves no HTTP API and loads no Fastify.
import { logDestination, loggerOptions } from '@refstack/shared/platform/logger';
import { closeOnSignals, exitOnStartupError } from '@refstack/shared/platform/process';
import { connectRedis } from '@refstack/shared/platform/redis';
import { guardMetrics } from './guard/guard-metrics.js';
import { OtpStore } from './otp/otp-store.js';
import { smsBudget } from './guard/index.js';
import { InviteDigests } from './sms/invite-digest.js';
import { MessageLog } from './sms/message-log.js';
import { createSmsProviders } from './sms/providers/index.js';
import { assertTemplatesFit } from './sms/render.js';
import { SmsRouter } from './sms/router.js';
import { createSmsWorker } from './sms/sms-consumer.js';
import { smsFunnelMetrics, smsProviderMetrics } from './sms/sms-metrics.js';
import { serveWorkerMetrics, workerRegistry } from './sms/worker-metrics.js';

/** Second entry point of the auth service: the BullMQ consumer that sends SMS through the providers. */
async function main(): Promise<void> {
  const config = loadConfig(process.env, { requiredSecrets: processSpec('sms-worker').secrets, smsCredentials: true });
  const { sms } = config;
  // Refused before any job is taken: a text that takes two segments costs twice, and autofill breaks.
  assertTemplatesFit({ ...sms, otpLength: config.otp.length, otpTtlSeconds: config.otp.ttlSeconds });
  const log = pino(loggerOptions('sms-worker', config.logLevel), logDestination());
  const registry = workerRegistry();
  const connection = await connectRedis(config, 'worker');
  // Statuses are written on a connection that fails fast, apart from the worker's blocking one.
  const store = await connectRedis(config, 'api');
  // Bound before the consumer exists: a port that cannot be bound stops the process before it takes
  // a job, not with one in hand (which another worker would send again after the stall check).
  const metrics = sms.metricsPort > 0 ? await serveWorkerMetrics(registry, config.opsHost, sms.metricsPort) : undefined;
  const router = new SmsRouter({
    providers: createSmsProviders(sms),
    config: sms,
    metrics: smsProviderMetrics(registry),
    log,
  });
  const worker = createSmsWorker({
    connection,
    prefix: queuePrefix(config.redisKeyPrefix),
    router,
    messages: new MessageLog(store, config.redisKeyPrefix),
    codes: new OtpStore(store, config.redisKeyPrefix),
    funnel: smsFunnelMetrics(registry),
    // Inviter notices are counted in the same daily budget as login codes.
    digests: new InviteDigests(store, config.redisKeyPrefix, smsBudget(store, config, guardMetrics(registry), log)),
    sms,
    log,
  });
  // Finishes the jobs in hand, then stops taking new ones.
  closeOnSignals(
    'sms-worker',
    async () => {
      await worker.close();
      router.close();
      metrics?.close();
      await Promise.all([connection.quit(), store.quit()]);
    },
    log,
  );
  await worker.waitUntilReady();
  log.info(
    {
      routes: { ...sms.routes.byCountry, '*': sms.routes.fallback },
      concurrency: sms.concurrency,
      metrics_port: metrics ? sms.metricsPort : null,
    },
    'sms worker ready',
  );
}

main().catch((error: unknown) => exitOnStartupError('sms-worker', error));
