import type { SmsProviderName } from '@refstack/shared/contracts';
import type { DeliveryStatus, OutgoingSms } from '../message.js';

/** What a provider said when it took a message. */
export interface Acceptance {
  /** The provider's own id of the message, which its delivery receipts name. */
  providerMessageId?: string;
}

/** Where an SMS goes: the console, or a provider's HTTP API. */
export interface SmsProvider {
  readonly name: SmsProviderName;
  /** Whether it can carry this message at all (Telegram Gateway carries login codes only). */
  carries(message: OutgoingSms): boolean;
  /**
   * Resolves once the provider accepted the message. Rejects with SmsPermanentError when it never
   * will for this number, with SmsTransientError (or any other error) when another try may work.
   * `signal` aborts the call at the provider timeout.
   */
  send(message: OutgoingSms, signal: AbortSignal): Promise<Acceptance>;
}

/**
 * The provider refused this number for good (invalid, not a mobile, blocked, in a stop list): no
 * other provider is asked either, since every one would be charged for the same refusal.
 */
export class SmsPermanentError extends Error {
  override name = 'SmsPermanentError';
  constructor(
    message: string,
    /** The provider's own reason (its code and words), kept in the message's status. */
    readonly reason: string = message,
  ) {
    super(message);
  }
}

/**
 * This try failed, the next may not: the provider is down, out of balance, refuses our credentials,
 * answers garbage or too late. The message moves on to the next provider.
 */
export class SmsTransientError extends Error {
  override name = 'SmsTransientError';
  constructor(
    message: string,
    readonly reason: string = message,
  ) {
    super(message);
  }
}

/**
 * This provider cannot reach this recipient (no Telegram account, its limit for this number), while
 * another may: the message moves on as after any transient failure, but the provider itself
 * answered and works, so its circuit breaker does not count it. Otherwise a route where most
 * recipients lack Telegram would open Telegram's circuit for everyone.
 */
export class SmsRecipientError extends SmsTransientError {
  override name = 'SmsRecipientError';
}

/** A setting loadConfig has checked for every routed provider; a provider built without it is a bug. */
export function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** A provider's HTTP answer, read whole (answers are small). */
export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * One request to a provider's API. Network errors and the timeout become SmsTransientError naming
 * the provider and never the URL (some providers take credentials in it) or a credential.
 */
export async function callProvider(
  provider: SmsProviderName,
  url: string,
  init: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; signal: AbortSignal },
): Promise<HttpAnswer> {
  try {
    const response = await fetch(url, { ...init, redirect: 'error' });
    return { status: response.status, body: await response.text() };
  } catch (error) {
    if (init.signal.aborted) throw new SmsTransientError(`${provider}: no answer in time`, 'timeout');
    throw new SmsTransientError(`${provider}: request failed (${errorCode(error)})`, 'network');
  }
}

/** The errno-style code of a fetch failure (ECONNREFUSED, …), never its message (which may hold the URL). */
function errorCode(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : 'network error';
}

/**
 * The JSON object of an answer, or a transient error when the provider answered something else
 * (every provider documents an object; `null` or a bare number would fail on the first field read).
 */
export function parseJson(provider: SmsProviderName, answer: HttpAnswer): object {
  let value: unknown;
  try {
    value = JSON.parse(answer.body);
  } catch {
    throw new SmsTransientError(`${provider}: HTTP ${answer.status} with a body that is not JSON`, 'malformed answer');
  }
  if (typeof value !== 'object' || value === null) {
    throw new SmsTransientError(
      `${provider}: HTTP ${answer.status} with JSON that is not an object`,
      'malformed answer',
    );
  }
  return value;
}

export const form = (params: Record<string, string | undefined>): string => {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) body.append(name, value);
  return body.toString();
};

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** A delivery receipt as it reached auth: the path (with query) it was posted to, headers, raw body. */
export interface ReceiptRequest {
  /** Path and query as received (`/webhooks/sms/twilio?x=1`): PUBLIC_BASE_URL + this is what the provider called. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One message's new status according to its provider. */
export interface ReceiptUpdate {
  providerMessageId: string;
  status: DeliveryStatus;
  /** The provider's reason for a failure (its code and words). */
  reason?: string;
}

export interface VerifiedReceipt {
  /** The statuses it reports; statuses this system does not track (still at the provider) are left out. */
  updates: ReceiptUpdate[];
  /** What identifies this very callback (its signature): a second one with the same key is a replay. */
  replayKey: string;
}

/**
 * Checks a provider's delivery receipts. `verify` throws `AppError('webhook_signature_invalid')`
 * when the receipt is unsigned, signed wrongly or stale, and then nothing of it may be used.
 */
export interface ReceiptVerifier {
  readonly provider: SmsProviderName;
  verify(request: ReceiptRequest, now: number): VerifiedReceipt;
  /** The answer the provider expects for a receipt it may stop sending. */
  readonly answer: { contentType: string; body: string };
}

/** The first value of a header. */
export function headerValue(headers: ReceiptRequest['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
