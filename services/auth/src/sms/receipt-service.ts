import { createHash } from 'node:crypto';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import { AppError, phoneCountry, type SmsConfig, type SmsProviderName } from '@refstack/shared/contracts';
import { MESSAGE_STATUS_TTL_MS, type MessageLog } from './message-log.js';
import type { ReceiptRequest, ReceiptVerifier } from './providers/provider.js';
import { smsruReceipts } from './providers/smsru.js';
import { telegramReceipts } from './providers/telegram.js';
import { twilioReceipts } from './providers/twilio.js';
import type { SmsFunnelMetrics } from './sms-metrics.js';

/**
 * The receipt checkers of the configured providers that send receipts (SMSC's are not taken: its
 * signature is not published). A provider without its credentials gets none, so its receipts are 404.
 */
export function receiptVerifiers(sms: SmsConfig): Map<SmsProviderName, ReceiptVerifier> {
  const verifiers = new Map<SmsProviderName, ReceiptVerifier>();
  if (sms.providers.includes('smsru') && sms.smsru.apiId) verifiers.set('smsru', smsruReceipts(sms.smsru));
  if (sms.providers.includes('twilio') && sms.twilio.authToken) {
    verifiers.set('twilio', twilioReceipts(sms.twilio, sms.publicBaseUrl));
  }
  if (sms.providers.includes('telegram') && sms.telegram.token)
    verifiers.set('telegram', telegramReceipts(sms.telegram));
  return verifiers;
}

export interface ReceiptServiceDeps {
  verifiers: ReadonlyMap<SmsProviderName, ReceiptVerifier>;
  messages: MessageLog;
  redis: Redis;
  redisKeyPrefix: string;
  funnel: Pick<SmsFunnelMetrics, 'delivered' | 'failed'>;
  now: () => number;
}

/** How long a receipt being applied holds its claim: a process that died meanwhile frees it then. */
const APPLYING_MS = 60_000;

/**
 * Takes a provider's delivery receipt: checks its signature, then moves each message it names
 * forward (never back). A refused receipt changes nothing; so does one already applied, which is
 * answered as taken, because the providers resend a receipt until they get that answer (SMS.ru
 * until `100`, Telegram until a 200) and a copy whose first answer was lost must stop somewhere.
 * A copy that arrives while the first is still being applied is answered 503, so that the provider
 * sends it again: the first may yet fail, and a 200 now would lose the receipt.
 */
export function receiptServiceFactory({ verifiers, messages, redis, redisKeyPrefix, funnel, now }: ReceiptServiceDeps) {
  return {
    providers(): SmsProviderName[] {
      return [...verifiers.keys()];
    },

    async receive(provider: string, request: ReceiptRequest): Promise<{ contentType: string; body: string }> {
      const verifier = verifiers.get(provider as SmsProviderName);
      if (!verifier) throw new AppError('not_found', 'No receipts are taken for this provider.');
      const receipt = verifier.verify(request, now());
      // A hash, so no provider signature is stored.
      const replayKey = `${redisKeyPrefix}:sms:receipt:${createHash('sha256').update(receipt.replayKey).digest('hex')}`;
      const first = await redis.set(replayKey, 'applying', 'PX', APPLYING_MS, 'NX');
      if (first === null) {
        if ((await redis.get(replayKey)) === 'applied') return verifier.answer;
        throw new AppError('service_unavailable', 'This receipt is being taken right now; send it again later.', {
          retryAfter: 5,
        });
      }
      try {
        for (const update of receipt.updates) {
          const applied = await messages.receipt(
            verifier.provider,
            update.providerMessageId,
            update.status,
            update.reason,
            now(),
          );
          const record = applied.record;
          if (!applied.changed || !record) continue;
          const labels = { provider: verifier.provider, country: phoneCountry(record.to), kind: record.kind };
          if (update.status === 'delivered') funnel.delivered.inc(labels);
          if (update.status === 'failed') funnel.failed.inc(labels);
        }
      } catch (error) {
        // Not applied: the provider's retry of this receipt must not be taken for a replay.
        await redis.del(replayKey).catch(() => undefined);
        throw error;
      }
      // Kept as long as the statuses it could touch.
      await redis.set(replayKey, 'applied', 'PX', MESSAGE_STATUS_TTL_MS);
      return verifier.answer;
    },
  };
}

export type ReceiptService = ReturnType<typeof receiptServiceFactory>;
