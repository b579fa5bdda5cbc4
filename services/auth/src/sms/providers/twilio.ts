import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError, type SmsConfig } from '@refstack/shared/contracts';
import type { DeliveryStatus } from '../message.js';
import {
  callProvider,
  required,
  form,
  FORM_CONTENT_TYPE,
  headerValue,
  parseJson,
  SmsPermanentError,
  SmsTransientError,
  type ReceiptVerifier,
  type SmsProvider,
} from './provider.js';

// Twilio error codes that mean the recipient itself cannot get an SMS, from any sender
// (https://www.twilio.com/docs/api/errors). Twilio warns that codes get split and reworded, so the
// list is kept short: everything else (our account, sender, geo permissions, rate, Twilio itself)
// leaves the message to the next provider.
const NUMBER_REFUSED: Readonly<Record<number, string>> = {
  21211: "invalid 'To' number",
  21265: "'To' number is a short code",
  21268: "'To' number is premium-rate",
  21610: 'recipient unsubscribed (STOP)',
  21614: "'To' number is not a mobile number",
  21635: "'To' number is a landline",
};

// Codes a status callback may carry for a failed or undelivered message, in words for the status.
const DELIVERY_ERRORS: Readonly<Record<string, string>> = {
  '30001': 'queue overflow',
  '30002': 'account suspended',
  '30003': 'unreachable handset',
  '30004': 'message blocked',
  '30005': 'unknown handset',
  '30006': 'landline or unreachable carrier',
  '30007': 'carrier filtering',
  '30008': 'unknown error',
  '30036': 'validity period expired',
};

/** Twilio's accepted range for ValidityPeriod, in seconds. */
const VALIDITY_MIN = 1;
const VALIDITY_MAX = 36_000;

/**
 * Twilio Programmable Messaging: create a Message (form POST, Basic auth with the account SID and
 * auth token). The message may wait in Twilio's queue only until the code expires
 * (`ValidityPeriod`), and reports its status to the receipt route when PUBLIC_BASE_URL is set.
 */
export function twilioProvider(config: SmsConfig['twilio'], statusCallbackUrl: string | undefined): SmsProvider {
  const sid = required(config.accountSid, 'TWILIO_ACCOUNT_SID');
  const token = required(config.authToken, 'TWILIO_AUTH_TOKEN');
  if (!config.from && !config.messagingServiceSid)
    throw new Error('TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is not set');
  const authorization = `Basic ${Buffer.from(`${sid}:${token}`).toString('base64')}`;
  return {
    name: 'twilio',
    carries: () => true,
    async send(message, signal) {
      const secondsLeft = Math.ceil((message.expiresAt - Date.now()) / 1000);
      const answer = await callProvider('twilio', `${config.baseUrl}/2010-04-01/Accounts/${sid}/Messages.json`, {
        method: 'POST',
        headers: { 'content-type': FORM_CONTENT_TYPE, authorization },
        body: form({
          To: message.to,
          // A messaging service picks the sender itself; it wins over a fixed number.
          ...(config.messagingServiceSid ? { MessagingServiceSid: config.messagingServiceSid } : { From: config.from }),
          Body: message.text,
          StatusCallback: statusCallbackUrl,
          ValidityPeriod: String(Math.min(VALIDITY_MAX, Math.max(VALIDITY_MIN, secondsLeft))),
        }),
        signal,
      });
      const ok = answer.status >= 200 && answer.status < 300;
      // An error page of a proxy or of Twilio's edge is not JSON: then its status says enough.
      const body = (ok || answer.body.trimStart().startsWith('{') ? parseJson('twilio', answer) : {}) as {
        sid?: unknown;
        code?: unknown;
      };
      if (ok) {
        if (typeof body.sid !== 'string') {
          throw new SmsTransientError('twilio: the answer names no message', 'malformed answer');
        }
        return { providerMessageId: body.sid };
      }
      const code = typeof body.code === 'number' ? body.code : undefined;
      if (code !== undefined && code in NUMBER_REFUSED) {
        const reason = `${code} ${NUMBER_REFUSED[code]}`;
        throw new SmsPermanentError(`twilio: ${reason}`, reason);
      }
      const reason = code !== undefined ? `${code} (HTTP ${answer.status})` : `HTTP ${answer.status}`;
      throw new SmsTransientError(`twilio: ${reason}`, reason);
    },
  };
}

/**
 * Twilio's request signature (https://www.twilio.com/docs/usage/security): the URL Twilio called,
 * then each POST parameter's name and value sorted by name (byte order; a repeated name once per
 * distinct value, values sorted, as Twilio's own SDKs do), HMAC-SHA1 with the auth token, base64.
 */
export function twilioSignature(authToken: string, url: string, params: URLSearchParams): string {
  const byName = new Map<string, Set<string>>();
  for (const [name, value] of params) byName.set(name, (byName.get(name) ?? new Set()).add(value));
  let data = url;
  for (const name of [...byName.keys()].sort()) {
    for (const value of [...byName.get(name)!].sort()) data += name + value;
  }
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

const STATUS: Readonly<Record<string, DeliveryStatus>> = {
  sent: 'sent',
  delivered: 'delivered',
  read: 'delivered',
  undelivered: 'failed',
  failed: 'failed',
  canceled: 'failed',
};

/**
 * Twilio's status callback. The signature covers the exact URL Twilio was given, which only
 * PUBLIC_BASE_URL knows (the gateway and any balancer in front change host and scheme), so without
 * it no receipt can be checked and every one is refused. Twilio wants a 200 with any body.
 */
export function twilioReceipts(config: SmsConfig['twilio'], publicBaseUrl: string | undefined): ReceiptVerifier {
  const token = required(config.authToken, 'TWILIO_AUTH_TOKEN');
  return {
    provider: 'twilio',
    answer: { contentType: 'text/xml', body: '<Response/>' },
    verify(request) {
      if (!publicBaseUrl) {
        throw new AppError(
          'webhook_signature_invalid',
          'PUBLIC_BASE_URL is not set, so no Twilio signature can be checked.',
        );
      }
      const signature = headerValue(request.headers, 'x-twilio-signature');
      if (!signature) throw new AppError('webhook_signature_invalid', 'The receipt carries no X-Twilio-Signature.');
      const params = new URLSearchParams(request.body.toString('utf8'));
      const expected = Buffer.from(twilioSignature(token, `${publicBaseUrl}${request.url}`, params));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new AppError('webhook_signature_invalid', 'The X-Twilio-Signature does not match this URL and body.');
      }
      const sid = params.get('MessageSid');
      const status = STATUS[params.get('MessageStatus') ?? ''];
      const errorCode = params.get('ErrorCode');
      const updates =
        sid && status
          ? [
              {
                providerMessageId: sid,
                status,
                ...(status === 'failed' && errorCode
                  ? { reason: `${errorCode} ${DELIVERY_ERRORS[errorCode] ?? 'delivery error'}` }
                  : {}),
              },
            ]
          : [];
      return { updates, replayKey: `twilio:${signature}` };
    },
  };
}
