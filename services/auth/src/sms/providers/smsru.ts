import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError, type SmsConfig } from '@refstack/shared/contracts';
import type { DeliveryStatus } from '../message.js';
import {
  callProvider,
  required,
  form,
  FORM_CONTENT_TYPE,
  parseJson,
  SmsPermanentError,
  SmsRecipientError,
  SmsTransientError,
  type ReceiptUpdate,
  type ReceiptVerifier,
  type SmsProvider,
} from './provider.js';

// SMS.ru's documented codes (https://sms.ru/api/status). Only these say the number itself cannot
// get the message, whichever provider tried: anything else (credentials, balance, limits, sender,
// our own request, the service) may go through another provider.
const NUMBER_REFUSED: Readonly<Record<number, string>> = {
  202: 'invalid number or no route to it',
  207: 'no route to this number',
  209: 'number in the account stop list',
  215: 'number in the SMS.ru stop list (spam complaint)',
};
// SMS.ru's own limits for one number: another provider may still send to it, and SMS.ru is not
// failing, so its circuit breaker must not count them.
const RECIPIENT_LIMITS = new Set([230, 231, 232, 233]);
const OTHER_ERRORS: Readonly<Record<number, string>> = {
  200: 'wrong api_id',
  201: 'not enough money',
  203: 'no message text',
  204: 'sender name not approved',
  205: 'message too long',
  206: 'daily limit reached',
  208: 'wrong time parameter',
  210: 'GET used where POST is needed',
  211: 'method not found',
  212: 'text not in UTF-8',
  213: 'too many numbers',
  214: 'foreign number refused by the account settings',
  220: 'service temporarily unavailable',
  230: 'daily limit for this number',
  231: 'limit of identical messages per minute',
  232: 'limit of identical messages per day',
  233: 'limit of repeated codes to this number',
  300: 'wrong token',
  301: 'wrong api_id or login',
  302: 'account not confirmed',
  500: 'server error',
};

const words = (code: number) => NUMBER_REFUSED[code] ?? OTHER_ERRORS[code] ?? 'unknown error';
const reasonOf = (code: number) => `${code} ${words(code)}`;

interface SendEntry {
  status?: unknown;
  status_code?: unknown;
  sms_id?: unknown;
}
interface SendAnswer extends SendEntry {
  sms?: Record<string, SendEntry>;
}

/**
 * SMS.ru (https://sms.ru/api/send): one message per POST to `/sms/send?json=1`, form-encoded, the
 * api_id in the body (never in a URL a proxy might log), the number as digits without '+'. No
 * `ttl` is sent: SMS.ru does not refund undelivered messages sent with one, and a code that arrives
 * late is refused at verify anyway.
 */
export function smsruProvider(config: SmsConfig['smsru']): SmsProvider {
  const apiId = required(config.apiId, 'SMSRU_API_ID');
  return {
    name: 'smsru',
    carries: () => true,
    async send(message, signal) {
      const to = message.to.replace(/^\+/, '');
      const answer = await callProvider('smsru', `${config.baseUrl}/sms/send?json=1`, {
        method: 'POST',
        headers: { 'content-type': FORM_CONTENT_TYPE },
        body: form({ api_id: apiId, to, msg: message.text, from: config.from }),
        signal,
      });
      if (answer.status < 200 || answer.status >= 300) {
        throw new SmsTransientError(`smsru: HTTP ${answer.status}`, `HTTP ${answer.status}`);
      }
      const body = parseJson('smsru', answer) as SendAnswer;
      // A request-level error (credentials, balance, …) or the number's own entry. One number is
      // sent per request, so a number code at the top is this number's too.
      const entry = body.status === 'OK' ? body.sms?.[to] : body;
      if (!entry || (body.status !== 'OK' && body.status !== 'ERROR')) {
        throw new SmsTransientError('smsru: the answer is not the documented JSON', 'malformed answer');
      }
      const code = Number(entry.status_code);
      if (entry.status === 'OK' && code === 100 && typeof entry.sms_id === 'string') {
        return { providerMessageId: entry.sms_id };
      }
      if (code in NUMBER_REFUSED) throw new SmsPermanentError(`smsru: ${reasonOf(code)}`, reasonOf(code));
      if (RECIPIENT_LIMITS.has(code)) throw new SmsRecipientError(`smsru: ${reasonOf(code)}`, reasonOf(code));
      throw new SmsTransientError(`smsru: ${reasonOf(code)}`, reasonOf(code));
    },
  };
}

// Delivery statuses of https://sms.ru/api/status; 100 and 101 (still with SMS.ru) change nothing here.
const RECEIPT_STATUS: Readonly<Record<number, { status: DeliveryStatus; words?: string }>> = {
  102: { status: 'sent' },
  103: { status: 'delivered' },
  110: { status: 'delivered' },
  104: { status: 'failed', words: 'expired' },
  105: { status: 'failed', words: 'deleted by the operator' },
  106: { status: 'failed', words: 'phone failure' },
  107: { status: 'failed', words: 'unknown reason' },
  108: { status: 'failed', words: 'rejected' },
  150: { status: 'failed', words: 'no route to this number' },
};

/** `data[0]`, `data[1]`, … in the order of their index, which the hash is computed in. */
function dataEntries(params: URLSearchParams): string[] {
  const entries: Array<[number, string]> = [];
  for (const [name, value] of params) {
    const index = /^data\[(\d+)\]$/.exec(name)?.[1];
    if (index !== undefined) entries.push([Number(index), value]);
  }
  return entries.sort((a, b) => a[0] - b[0]).map(([, value]) => value);
}

const refused = (detail: string) => new AppError('webhook_signature_invalid', detail);
const SHA256_HEX = /^[0-9a-f]{64}$/i;

/**
 * SMS.ru's status callback: a form POST of `data[N]` entries (`sms_status\n<id>\n<status>\n<time>`)
 * and `hash`, the SHA-256 of the api_id followed by every entry, as SMS.ru's own handler example
 * checks it. The answer must be `100`, or SMS.ru sends it again.
 */
export function smsruReceipts(config: SmsConfig['smsru']): ReceiptVerifier {
  const apiId = required(config.apiId, 'SMSRU_API_ID');
  return {
    provider: 'smsru',
    answer: { contentType: 'text/plain; charset=utf-8', body: '100' },
    verify(request) {
      const params = new URLSearchParams(request.body.toString('utf8'));
      const raw = params.get('hash');
      const data = dataEntries(params);
      if (!raw || data.length === 0) throw refused('An SMS.ru callback carries data and its hash.');
      // Buffer.from(…, 'hex') stops at the first non-hex character, so a hash with anything appended
      // would still match under a replay key of its own: only the bare digest is taken, and keyed in
      // one letter case.
      if (!SHA256_HEX.test(raw)) throw refused('The hash is not a SHA-256 hex digest.');
      const hash = raw.toLowerCase();
      const expected = createHash('sha256')
        .update(apiId + data.join(''))
        .digest();
      const given = Buffer.from(hash, 'hex');
      if (!timingSafeEqual(given, expected)) {
        throw refused('The hash does not match: not signed with this api_id, or changed on the way.');
      }
      const updates: ReceiptUpdate[] = [];
      for (const entry of data) {
        const [type, smsId, code] = entry.split('\n');
        const mapped = RECEIPT_STATUS[Number(code)];
        if (type !== 'sms_status' || !smsId || !mapped) continue;
        updates.push({
          providerMessageId: smsId,
          status: mapped.status,
          ...(mapped.words ? { reason: `${code} ${mapped.words}` } : {}),
        });
      }
      return { updates, replayKey: `smsru:${hash}` };
    },
  };
}
