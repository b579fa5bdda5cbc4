// A fault-test fixture: the real SMS worker code with a provider that takes its time, so a test can
// SIGKILL the process while a job is in hand.
import { loadConfig, queuePrefix } from '@refstack/shared/contracts';
import { connectRedis } from '@refstack/shared/platform/redis';
import { createSmsWorker } from '../../services/auth/src/sms/sms-consumer.js';

const config = loadConfig(process.env);
const connection = await connectRedis(config.redisUrl, 'worker');
const worker = createSmsWorker({
  connection,
  prefix: queuePrefix(config.redisKeyPrefix),
  provider: {
    name: 'slow',
    async send(to) {
      process.stdout.write(`sending to ${to}\n`);
      await new Promise((resolve) => setTimeout(resolve, 60_000));
    },
  },
  concurrency: 1,
  log: { info: () => undefined, warn: () => undefined, error: () => undefined },
});
await worker.waitUntilReady();
process.stdout.write('slow worker ready\n');
