import { pino } from 'pino';
import { loadConfig, queuePrefix } from '@refstack/shared/contracts';
// Module by module, not the platform barrel: the worker serves no HTTP and loads no Fastify.
import { loggerOptions } from '@refstack/shared/platform/logger';
import { closeOnSignals, exitOnStartupError } from '@refstack/shared/platform/process';
import { connectRedis } from '@refstack/shared/platform/redis';
import { createSmsProvider } from './sms/sms-provider.js';
import { createSmsWorker } from './sms/sms-consumer.js';

/** Second entry point of the auth service: the BullMQ consumer that sends (prints) SMS. */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const log = pino(loggerOptions('sms-worker', config.logLevel));
  const connection = await connectRedis(config.redisUrl, 'worker');
  const worker = createSmsWorker({
    connection,
    prefix: queuePrefix(config.redisKeyPrefix),
    provider: createSmsProvider(config.sms.provider),
    concurrency: config.sms.concurrency,
    log,
  });
  // Finishes the job in hand, then stops taking new ones.
  closeOnSignals(
    'sms-worker',
    async () => {
      await worker.close();
      await connection.quit();
    },
    log,
  );
  await worker.waitUntilReady();
  log.info({ provider: config.sms.provider, concurrency: config.sms.concurrency }, 'sms worker ready');
}

main().catch((error: unknown) => exitOnStartupError('sms-worker', error));
