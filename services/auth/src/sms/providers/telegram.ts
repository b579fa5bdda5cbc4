import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { AppError, type SmsConfig } from '@refstack/shared/contracts';
import type { DeliveryStatus } from '../message.js';
import {
  callProvider,
  required,
  headerValue,
  parseJson,
  SmsPermanentError,
  SmsRecipientError,
  SmsTransientError,
  type ReceiptVerifier,
  type SmsProvider,
} from './provider.js';

/** Telegram Gateway's accepted `ttl`, in seconds. */
const TTL_MIN = 30;
const TTL_MAX = 3600;
/** How old a report's timestamp may be (either way), as Telegram's docs ask it to be checked. */
const REPORT_MAX_AGE_S = 300;

/**
 * Only a number that is invalid for everyone stops the message. PHONE_NUMBER_NOT_FOUND and
 * PHONE_NUMBER_NOT_AVAILABLE mean the person has no Telegram (or cannot get Gateway messages): an
 * SMS provider after Telegram must still try, and Telegram is not failing, so they are the
 * recipient's errors. The account's problems (token, balance, FLOOD_WAIT_n) and unknown strings
 * are transient.
 */
const NUMBER_REFUSED = new Set(['PHONE_NUMBER_INVALID']);
const NOT_ON_TELEGRAM = new Set(['PHONE_NUMBER_NOT_FOUND', 'PHONE_NUMBER_NOT_AVAILABLE']);

/**
 * Telegram Gateway (https://core.telegram.org/gateway/api): `sendVerificationMessage` with our own
 * code, which Telegram shows in its own words, so it carries login codes only. The message expires
 * with the code (`ttl`, within Telegram's 30 to 3600 s; an undelivered one is refunded), our message
 * id rides along as `payload`, and delivery is reported to the receipt route when PUBLIC_BASE_URL is set.
 */
export function telegramGatewayProvider(config: SmsConfig['telegram'], callbackUrl: string | undefined): SmsProvider {
  const token = required(config.token, 'TELEGRAM_GATEWAY_TOKEN');
  return {
    name: 'telegram',
    carries: (message) => message.kind === 'otp' && message.code !== undefined,
    async send(message, signal) {
      if (message.code === undefined) throw new SmsTransientError('telegram: carries login codes only', 'not a code');
      const secondsLeft = Math.ceil((message.expiresAt - Date.now()) / 1000);
      const answer = await callProvider('telegram', `${config.baseUrl}/sendVerificationMessage`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({
          phone_number: message.to,
          code: message.code,
          ttl: Math.min(TTL_MAX, Math.max(TTL_MIN, secondsLeft)),
          payload: message.id,
          // Telegram takes HTTPS report URLs only; a plain-HTTP PUBLIC_BASE_URL would fail every code.
          ...(callbackUrl?.startsWith('https://') ? { callback_url: callbackUrl } : {}),
        }),
        signal,
      });
      // Errors come as {ok: false, error} whatever the HTTP status; a body that is not JSON is the
      // edge's, and its status says enough.
      if (!answer.body.trimStart().startsWith('{') && (answer.status < 200 || answer.status >= 300)) {
        throw new SmsTransientError(`telegram: HTTP ${answer.status}`, `HTTP ${answer.status}`);
      }
      const body = parseJson('telegram', answer) as {
        ok?: unknown;
        error?: unknown;
        result?: { request_id?: unknown };
      };
      if (body.ok === true && typeof body.result?.request_id === 'string') {
        return { providerMessageId: body.result.request_id };
      }
      if (body.ok !== false || typeof body.error !== 'string') {
        throw new SmsTransientError('telegram: the answer is not the documented JSON', 'malformed answer');
      }
      // Error strings are upper-case identifiers; anything else is not quoted back.
      const reason = /^[A-Z0-9_]{1,64}$/.test(body.error) ? body.error : 'unknown error';
      if (NUMBER_REFUSED.has(reason)) throw new SmsPermanentError(`telegram: ${reason}`, reason);
      if (NOT_ON_TELEGRAM.has(reason)) throw new SmsRecipientError(`telegram: ${reason}`, reason);
      throw new SmsTransientError(`telegram: ${reason}`, reason);
    },
  };
}

const STATUS: Readonly<Record<string, DeliveryStatus>> = {
  sent: 'sent',
  delivered: 'delivered',
  read: 'delivered',
  expired: 'failed',
  revoked: 'failed',
};

/** Telegram's report signature: hex HMAC-SHA256 of `<timestamp>\n<body>`, keyed with SHA-256(token). */
export function telegramSignature(token: string, timestamp: string, body: Buffer | string): string {
  const key = createHash('sha256').update(token).digest();
  return createHmac('sha256', key).update(`${timestamp}\n`).update(body).digest('hex');
}

/**
 * Telegram Gateway's delivery report: a RequestStatus JSON posted to `callback_url`, signed over its
 * raw body and its `X-Request-Timestamp`, which must be recent. Telegram retries until it gets a 200.
 */
export function telegramReceipts(config: SmsConfig['telegram']): ReceiptVerifier {
  const token = required(config.token, 'TELEGRAM_GATEWAY_TOKEN');
  return {
    provider: 'telegram',
    answer: { contentType: 'application/json; charset=utf-8', body: '{}' },
    verify(request, now) {
      const timestamp = headerValue(request.headers, 'x-request-timestamp');
      const signature = headerValue(request.headers, 'x-request-signature');
      if (!timestamp || !signature) {
        throw new AppError(
          'webhook_signature_invalid',
          'The report carries no X-Request-Timestamp and X-Request-Signature.',
        );
      }
      const expected = Buffer.from(telegramSignature(token, timestamp, request.body));
      const given = Buffer.from(signature.toLowerCase());
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new AppError('webhook_signature_invalid', 'The X-Request-Signature does not match this body.');
      }
      if (!/^\d{1,12}$/.test(timestamp) || Math.abs(now / 1000 - Number(timestamp)) > REPORT_MAX_AGE_S) {
        throw new AppError('webhook_signature_invalid', 'The report is older than five minutes (or from the future).');
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(request.body.toString('utf8'));
      } catch {
        throw new AppError('validation_failed', 'The report is not JSON.');
      }
      if (typeof parsed !== 'object' || parsed === null) {
        throw new AppError('validation_failed', 'The report is not a JSON object.');
      }
      const report = parsed as { request_id?: unknown; delivery_status?: { status?: unknown } | null };
      const status = STATUS[String(report.delivery_status?.status)];
      const updates =
        typeof report.request_id === 'string' && status
          ? [
              {
                providerMessageId: report.request_id,
                status,
                ...(status === 'failed' ? { reason: String(report.delivery_status?.status) } : {}),
              },
            ]
          : [];
      return { updates, replayKey: `telegram:${signature.toLowerCase()}` };
    },
  };
}
