import { phoneCountry } from '@refstack/shared/contracts';
import type { MessageLog } from './message-log.js';
import type { SmsFunnelMetrics } from './sms-metrics.js';

export interface CodeFunnelDeps {
  messages: MessageLog;
  funnel: Pick<SmsFunnelMetrics, 'verified'>;
  /** A code's lifetime: the message that carried a verified code was taken by a provider within it. */
  ttlMs: number;
  now: () => number;
  log: { warn(obj: object, msg: string): void };
}

/**
 * Counts a verified code under the provider that carried it (the phone's last login message), so
 * that conversion per provider is one PromQL line. Runs after the answer's work, never failing it.
 */
export function codeFunnel({ messages, funnel, ttlMs, now, log }: CodeFunnelDeps): (phone: string) => void {
  return (phone) => {
    messages.lastCodeMessage(phone, now() - ttlMs - 60_000).then(
      (message) => funnel.verified.inc({ provider: message?.provider ?? 'unknown', country: phoneCountry(phone) }),
      (error: unknown) => log.warn({ reason: (error as Error).message }, 'verified code not counted'),
    );
  };
}
