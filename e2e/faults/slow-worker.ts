// A fault-test fixture: the real SMS worker code with a provider that takes its time, so a test can
// SIGKILL the process while a job is in hand.
import { Registry } from 'prom-client';
import { loadConfig, queuePrefix } from '@refstack/shared/contracts';
import { connectRedis } from '@refstack/shared/platform/redis';
import { OtpStore } from '../../services/auth/src/otp/otp-store.js';
import { MessageLog } from '../../services/auth/src/sms/message-log.js';
import { SmsRouter } from '../../services/auth/src/sms/router.js';
import { createSmsWorker } from '../../services/auth/src/sms/sms-consumer.js';
import { smsFunnelMetrics, smsProviderMetrics } from '../../services/auth/src/sms/sms-metrics.js';

const config = loadConfig({ ...process.env, SMS_PROVIDERS: 'console' });
const connection = await connectRedis(config, 'worker');
const store = await connectRedis(config, 'api');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const registry = new Registry();
const slow = {
  name: 'console' as const,
  carries: () => true,
  async send(message: { to: string }) {
    process.stdout.write(`sending to ${message.to}\n`);
    await new Promise((resolve) => setTimeout(resolve, 60_000));
    return {};
  },
};
const worker = createSmsWorker({
  connection,
  prefix: queuePrefix(config.redisKeyPrefix),
  router: new SmsRouter({
    providers: new Map([['console', slow]]),
    config: config.sms,
    metrics: smsProviderMetrics(registry),
    log: quiet,
  }),
  messages: new MessageLog(store, config.redisKeyPrefix),
  codes: new OtpStore(store, config.redisKeyPrefix),
  funnel: smsFunnelMetrics(registry),
  sms: { ...config.sms, concurrency: 1 },
  log: quiet,
});
await worker.waitUntilReady();
process.stdout.write('slow worker ready\n');
