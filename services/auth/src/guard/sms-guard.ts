import { AppError, phoneCountry, requireSmsDestination, type Config } from '@refstack/shared/contracts';
import type { CaptchaVerifier } from './captcha.js';
import type { SmsBudgetCounter } from './budget.js';
import type { RangeGuard } from './range-guard.js';
import type { GuardMetrics } from './guard-metrics.js';
import type { RiskTake, RiskWindows } from './risk-window.js';

export interface GuardLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SmsGuardDeps {
  ranges: RangeGuard;
  /** What `CAPTCHA_MODE=risk` counts at the challenge step. */
  risk: RiskWindows;
  budget: SmsBudgetCounter;
  /** Undefined when CAPTCHA_MODE=off. */
  captcha: CaptchaVerifier | undefined;
  config: Pick<Config, 'guard' | 'sendCodeIpPerHour' | 'phone'>;
  metrics: GuardMetrics;
  log: GuardLogger;
}

/** What a send-code call brings for the guard to judge. */
export interface SendAttempt {
  phone: string;
  ip: string;
  captchaToken: string | undefined;
  /** The client's limit bucket: an IPv4 address or an IPv6 /64. */
  clientBucket: string;
  /** Whether the number is on the safe list, when the caller already asked (`safeLookup`). */
  safe?: Promise<boolean> | undefined;
  now: number;
}

/** A send the guard let through: counted in its range and the budget until released. */
export interface GuardPass {
  release(): Promise<void>;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
/** A signal fires at this share of a limit, well before the limit refuses. */
const NEAR_LIMIT = 0.5;
/** Settled sends a range needs before its conversion is a risk signal (well below an automatic block). */
const RISK_MIN_SENDS = 5;

/**
 * The SMS pumping guard in front of every code sent: the bot challenge (always, or when a risk
 * signal fires), the number range's velocity and conversion, and the daily budget. Every refusal
 * has its own code, is counted by reason and logged with the range (never the number), and none
 * depends on whether the phone has an account.
 */
export function smsGuardFactory({ ranges, risk, budget, captcha, config, metrics, log }: SmsGuardDeps) {
  const { guard } = config;

  function refuse(reason: string, range: string, error: AppError, detail?: string): never {
    metrics.refusals.inc({ reason });
    log.info({ reason, range, code: error.code, ...(detail ? { detail } : {}) }, 'send-code refused by the sms guard');
    throw error;
  }

  /**
   * The signals that make `risk` mode ask for a challenge (empty when none fires), with this call
   * counted in the client's and the range's risk windows; `release` takes it back out.
   */
  async function riskSignals(
    attempt: SendAttempt,
    range: string,
  ): Promise<{ signals: string[]; release(): Promise<void> }> {
    const safeLookup = attempt.safe ?? ranges.isSafe(attempt.phone);
    const clientThreshold = Math.ceil(config.sendCodeIpPerHour * NEAR_LIMIT);
    const rangeThreshold = Math.ceil(guard.prefixPerHour * NEAR_LIMIT);
    // The safe list vouches for the numbers (their range's counts say nothing), not for the client
    // asking: a bot that found a listed number is still a bot. The client's count does not wait for
    // the list's answer, and the range's read is given it.
    const settled = await Promise.allSettled([
      risk.client(attempt.clientBucket, clientThreshold, attempt.now),
      safeLookup.then((safe) => (safe ? undefined : risk.range(range, rangeThreshold, attempt.now))),
      safeLookup.then((safe) => (safe ? undefined : ranges.state(range, attempt.now, false, false))),
    ] as const);
    const [clientTake, rangeTaken, stateRead] = settled;
    const taken = [clientTake, rangeTaken].flatMap((outcome) =>
      outcome.status === 'fulfilled' && outcome.value !== undefined ? [outcome.value] : [],
    );
    const release = async () => {
      await Promise.all(taken.map((take) => take.release()));
    };
    // A call that fails here (503) counts for nothing, as a call refused here.
    const failed = settled.find((outcome) => outcome.status === 'rejected');
    if (failed) {
      await release().catch(() => undefined);
      throw failed.reason;
    }
    const client = (clientTake as PromiseFulfilledResult<RiskTake>).value;
    const rangeTake = rangeTaken.status === 'fulfilled' ? rangeTaken.value : undefined;
    const state = stateRead.status === 'fulfilled' ? stateRead.value : undefined;
    const signals: string[] = [];
    if (client.before >= clientThreshold) signals.push('client_near_limit');
    if (rangeTake && rangeTake.before >= rangeThreshold) signals.push('range_near_limit');
    if (state && state.settledSends >= RISK_MIN_SENDS && state.verified < guard.minConversion * state.settledSends)
      signals.push('range_low_conversion');
    if (state?.block) signals.push('range_blocked');
    return { signals, release };
  }

  async function challenge(attempt: SendAttempt, range: string): Promise<void> {
    if (!captcha || guard.captcha.mode === 'off') return;
    if (guard.captcha.mode !== 'risk') return solved(captcha, attempt, range);
    const { signals, release } = await riskSignals(attempt, range);
    if (signals.length === 0) return;
    metrics.riskSignals.inc({ signal: signals[0] ?? 'unknown' });
    // Refused here, the call counts for nothing, as a call refused at any step.
    await solved(captcha, attempt, range).catch(async (error: unknown) => {
      await release().catch(() => undefined);
      throw error;
    });
  }

  /** The challenge's token checked: passes, or refuses with why. */
  async function solved(captcha: CaptchaVerifier, attempt: SendAttempt, range: string): Promise<void> {
    const token = attempt.captchaToken;
    if (token === undefined || token === '') {
      refuse(
        'captcha_required',
        range,
        new AppError('captcha_required', 'Solve the challenge and send its token as captcha_token.', {
          extensions: { captcha_provider: captcha.provider },
        }),
      );
    }
    const verdict = await captcha.verify(token, attempt.ip);
    if (verdict.result === 'passed') return;
    if (verdict.result === 'refused') {
      refuse(
        `captcha_${verdict.reason}`,
        range,
        new AppError('captcha_invalid', 'The challenge token is not valid (wrong, expired or used); solve it again.', {
          extensions: { captcha_provider: captcha.provider },
        }),
        // The provider's own codes: a site key and secret of different accounts shows here.
        verdict.detail.slice(0, 120),
      );
    }
    metrics.captchaUnavailable.inc({
      provider: captcha.provider,
      outcome: guard.captcha.failOpen ? 'let_through' : 'refused',
    });
    log.warn(
      { provider: captcha.provider, reason: verdict.detail, fail_open: guard.captcha.failOpen },
      'captcha provider did not answer',
    );
    if (guard.captcha.failOpen) return;
    refuse(
      'captcha_unavailable',
      range,
      new AppError('service_unavailable', 'The challenge cannot be checked right now; try again shortly.', {
        retryAfter: 5,
      }),
    );
  }

  return {
    /** The E.164 number a code may go to, or `invalid_phone` / `destination_refused`. */
    destination(input: string): string {
      try {
        return requireSmsDestination(input, config.phone, guard.denyPrefixes);
      } catch (error) {
        if (error instanceof AppError && error.code === 'destination_refused') {
          const denied = error.extras.extensions?.number_type === 'denied_range';
          metrics.refusals.inc({ reason: denied ? 'destination_deny_prefix' : 'destination_number_type' });
        }
        throw error;
      }
    },

    /**
     * The bot challenge, before anything is counted: `captcha_required`, `captcha_invalid`, or 503
     * when the provider cannot answer and CAPTCHA_FAIL_OPEN is false.
     */
    challenge: (attempt: SendAttempt) => challenge(attempt, ranges.rangeOf(attempt.phone)),

    /**
     * Whether the number is on the safe list, for `admit`. It counts nothing, so a send-code starts
     * it with its first step instead of waiting for it in `admit`.
     */
    safeLookup(phone: string): Promise<boolean> {
      const lookup = ranges.isSafe(phone);
      // A call refused before `admit` never reads it.
      lookup.catch(() => undefined);
      return lookup;
    },

    /**
     * Takes the send's place in its range and the day's budget: `prefix_blocked` or
     * `budget_exhausted`, each with Retry-After. Release the pass if the code is not sent after all.
     */
    async admit(
      attempt: Pick<SendAttempt, 'phone' | 'now'> & { safe?: Promise<boolean> | undefined },
    ): Promise<GuardPass> {
      const range = ranges.rangeOf(attempt.phone);
      const admission = await ranges.admit(attempt.phone, attempt.now, attempt.safe);
      if (!admission.allowed) {
        refuse(
          admission.reason === 'velocity' ? 'prefix_velocity' : `prefix_${admission.reason}`,
          range,
          new AppError('prefix_blocked', 'Codes to numbers like this one are paused for a while; try again later.', {
            retryAfter: seconds(admission.retryAfterMs),
          }),
        );
      }
      const spend = await budget.reserve(phoneCountry(attempt.phone), attempt.now).catch(async (error: unknown) => {
        await admission.release().catch(() => undefined);
        throw error;
      });
      if (!spend.allowed) {
        await admission.release();
        refuse(
          'budget_exhausted',
          range,
          new AppError('budget_exhausted', 'No more codes can be sent today; try again after the day ends (UTC).', {
            retryAfter: seconds(spend.retryAfterMs),
          }),
        );
      }
      return {
        release: async () => {
          await Promise.all([admission.release(), spend.release()]);
        },
      };
    },

    /**
     * A code sent to `phone` at `sentAt` was verified; its range converts. Never fails the sign-in.
     * A safe-listed number's codes are not among the range's sends, so not among its conversions.
     */
    verified(phone: string, sentAt: number): void {
      ranges.verified(phone, sentAt).catch((error: unknown) => {
        log.warn({ reason: (error as Error).message }, 'range conversion not recorded');
      });
    },
  };
}

export type SmsGuard = ReturnType<typeof smsGuardFactory>;
