import CircuitBreaker from 'opossum';
import { providersFor, type SmsConfig, type SmsProviderName } from '@refstack/shared/contracts';
import type { OutgoingSms } from './message.js';
import {
  SmsPermanentError,
  SmsRecipientError,
  SmsTransientError,
  type Acceptance,
  type SmsProvider,
} from './providers/provider.js';
import { CIRCUIT_STATE, type SmsProviderMetrics } from './sms-metrics.js';

export interface SmsRouterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SmsRouterOptions {
  providers: ReadonlyMap<SmsProviderName, SmsProvider>;
  config: Pick<SmsConfig, 'routes' | 'providerTimeoutMs' | 'circuit'>;
  metrics: SmsProviderMetrics;
  log: SmsRouterLogger;
  now?: () => number;
}

export type RouteOutcome =
  | { result: 'sent'; provider: SmsProviderName; providerMessageId?: string }
  /** A provider refused the number for good: no other provider is asked. */
  | { result: 'refused'; provider: SmsProviderName; reason: string }
  /** No provider took it this time (each failed, timed out, or was skipped by its open circuit). */
  | { result: 'unavailable'; reasons: string[] }
  /** The message expired before a provider took it. */
  | { result: 'expired' };

export interface SendOptions {
  /** The provider that carried the last code to this phone: this message starts with the next one. */
  startAfter?: SmsProviderName;
  /** Told about each provider that failed this message, as it happens (for the message's history). */
  onAttemptFailed?: (provider: SmsProviderName, reason: string) => Promise<void>;
}

/** Provider order for a message: its country's route, only providers that carry it, after `startAfter`. */
export function providerOrder(
  routes: SmsConfig['routes'],
  message: OutgoingSms,
  carries: (name: SmsProviderName) => boolean,
  startAfter?: SmsProviderName,
): SmsProviderName[] {
  const order = providersFor(routes, message.country).filter(carries);
  const last = startAfter ? order.indexOf(startAfter) : -1;
  return last < 0 ? order : [...order.slice(last + 1), ...order.slice(0, last + 1)];
}

/**
 * Sends a message through its route's providers in order, each call bounded by the provider
 * timeout. A transient failure moves on to the next provider; a permanent one (the number is
 * refused) stops the message. Each provider sits behind a circuit breaker (opossum): once enough
 * of its recent calls fail it is skipped for `resetSeconds`, then one trial call decides whether it
 * is back. Refusals and one recipient's errors do not count as failures (the provider answered).
 */
export class SmsRouter {
  private readonly breakers = new Map<SmsProviderName, CircuitBreaker<[OutgoingSms], Acceptance>>();
  private readonly now: () => number;

  constructor(private readonly options: SmsRouterOptions) {
    this.now = options.now ?? Date.now;
    const { config, metrics, log } = options;
    for (const [name, provider] of options.providers) {
      const breaker = new CircuitBreaker<[OutgoingSms], Acceptance>(
        (message) => provider.send(message, AbortSignal.timeout(config.providerTimeoutMs)),
        {
          name,
          // The provider call aborts itself at the timeout; this only catches one that ignores it.
          timeout: config.providerTimeoutMs + 1000,
          // Opossum opens past its threshold (a strict >); the contract opens at it, so that 100
          // means "every call failed", not "never".
          errorThresholdPercentage: config.circuit.errorPercent - 1e-9,
          volumeThreshold: config.circuit.minCalls,
          resetTimeout: config.circuit.resetSeconds * 1000,
          rollingCountTimeout: 60_000,
          rollingCountBuckets: 6,
          errorFilter: (error: unknown) => error instanceof SmsPermanentError || error instanceof SmsRecipientError,
        },
      );
      metrics.circuitState.set({ provider: name }, CIRCUIT_STATE.closed);
      breaker.on('open', () => {
        metrics.circuitState.set({ provider: name }, CIRCUIT_STATE.open);
        metrics.circuitOpened.inc({ provider: name });
        log.warn(
          { provider: name, reset_seconds: config.circuit.resetSeconds },
          'sms provider circuit open: skipping it for a while',
        );
      });
      breaker.on('halfOpen', () => {
        metrics.circuitState.set({ provider: name }, CIRCUIT_STATE.half_open);
        log.info({ provider: name }, 'sms provider circuit half-open: one trial call');
      });
      breaker.on('close', () => {
        metrics.circuitState.set({ provider: name }, CIRCUIT_STATE.closed);
        log.info({ provider: name }, 'sms provider circuit closed: the provider is used again');
      });
      this.breakers.set(name, breaker);
    }
  }

  /** Whether a provider is being skipped right now. */
  isOpen(name: SmsProviderName): boolean {
    return this.breakers.get(name)?.opened ?? false;
  }

  order(message: OutgoingSms, startAfter?: SmsProviderName): SmsProviderName[] {
    return providerOrder(
      this.options.config.routes,
      message,
      (name) => this.options.providers.get(name)?.carries(message) ?? false,
      startAfter,
    );
  }

  async send(message: OutgoingSms, options: SendOptions = {}): Promise<RouteOutcome> {
    const { metrics } = this.options;
    const reasons: string[] = [];
    for (const name of this.order(message, options.startAfter)) {
      // A code must never arrive after it stopped working, however long the earlier tries took.
      if (this.now() >= message.expiresAt) return { result: 'expired' };
      const breaker = this.breakers.get(name);
      if (!breaker) continue;
      try {
        const accepted = await breaker.fire(message);
        metrics.attempts.inc({ provider: name, outcome: 'accepted' });
        return {
          result: 'sent',
          provider: name,
          ...(accepted.providerMessageId ? { providerMessageId: accepted.providerMessageId } : {}),
        };
      } catch (error) {
        if (error instanceof SmsPermanentError) {
          metrics.attempts.inc({ provider: name, outcome: 'refused' });
          return { result: 'refused', provider: name, reason: `${name}: ${error.reason}` };
        }
        const { outcome, reason } = classify(error);
        metrics.attempts.inc({ provider: name, outcome });
        reasons.push(`${name}: ${reason}`);
        this.options.log.warn({ provider: name, sms_id: message.id, reason }, 'sms provider failed; trying the next');
        await options.onAttemptFailed?.(name, reason);
      }
    }
    return { result: 'unavailable', reasons };
  }

  /** Stops the breakers' timers. */
  close(): void {
    for (const breaker of this.breakers.values()) breaker.shutdown();
  }
}

function classify(error: unknown): {
  outcome: 'failed' | 'timeout' | 'circuit_open' | 'unreachable';
  reason: string;
} {
  const code = (error as { code?: unknown }).code;
  if (code === 'EOPENBREAKER') return { outcome: 'circuit_open', reason: 'circuit open' };
  if (code === 'ETIMEDOUT') return { outcome: 'timeout', reason: 'timeout' };
  // Kept apart from `failed`, which alerts on the provider.
  if (error instanceof SmsRecipientError) return { outcome: 'unreachable', reason: error.reason };
  if (error instanceof SmsTransientError) {
    return { outcome: error.reason === 'timeout' ? 'timeout' : 'failed', reason: error.reason };
  }
  // A bug in a provider module: reported by its kind only (its message might hold the request).
  return { outcome: 'failed', reason: error instanceof Error ? error.name : 'error' };
}
