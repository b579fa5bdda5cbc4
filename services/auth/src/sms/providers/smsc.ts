import type { SmsConfig } from '@refstack/shared/contracts';
import {
  callProvider,
  required,
  form,
  FORM_CONTENT_TYPE,
  parseJson,
  SmsPermanentError,
  SmsTransientError,
  type SmsProvider,
} from './provider.js';

// SMSC's documented send errors (https://smsc.ru/api/http/send/sms/sms_answer/). Only 7 and 8 are
// about the number itself; the rest are our account, request or rate, which another provider may
// not share.
const NUMBER_REFUSED: Readonly<Record<number, string>> = {
  7: 'wrong phone number format',
  8: 'cannot be delivered to this number',
};
const OTHER_ERRORS: Readonly<Record<number, string>> = {
  1: 'parameter error',
  2: 'wrong login or password',
  3: 'not enough money',
  4: 'address blocked for a while after frequent errors',
  5: 'wrong date format',
  6: 'message forbidden (text or sender name)',
  9: 'too many identical or simultaneous requests',
};

const reasonOf = (code: number) => `${code} ${NUMBER_REFUSED[code] ?? OTHER_ERRORS[code] ?? 'unknown error'}`;

/**
 * SMSC.ru (https://smsc.ru/api/http/): one message per form POST to `/sys/send.php` (the password
 * stays out of URLs), UTF-8 (`charset`; SMSC's default is windows-1251), JSON answers (`fmt=3`).
 * The number goes with its '+', which tells SMSC not to "correct" it. Our message id goes as SMSC's
 * `id` (up to 40 characters of [A-Za-z0-9.-_]), so the id SMSC reports back is ours.
 */
export function smscProvider(config: SmsConfig['smsc']): SmsProvider {
  const login = required(config.login, 'SMSC_LOGIN');
  const password = required(config.password, 'SMSC_PASSWORD');
  return {
    name: 'smsc',
    carries: () => true,
    async send(message, signal) {
      const answer = await callProvider('smsc', `${config.baseUrl}/sys/send.php`, {
        method: 'POST',
        headers: { 'content-type': FORM_CONTENT_TYPE },
        body: form({
          login,
          psw: password,
          phones: message.to,
          mes: message.text,
          sender: config.sender,
          id: message.id,
          fmt: '3',
          charset: 'utf-8',
        }),
        signal,
      });
      if (answer.status < 200 || answer.status >= 300) {
        throw new SmsTransientError(`smsc: HTTP ${answer.status}`, `HTTP ${answer.status}`);
      }
      const body = parseJson('smsc', answer) as { id?: unknown; cnt?: unknown; error_code?: unknown };
      if (body.error_code !== undefined) {
        const code = Number(body.error_code);
        if (code in NUMBER_REFUSED) throw new SmsPermanentError(`smsc: ${reasonOf(code)}`, reasonOf(code));
        throw new SmsTransientError(`smsc: ${reasonOf(code)}`, reasonOf(code));
      }
      if ((typeof body.id !== 'number' && typeof body.id !== 'string') || typeof body.cnt !== 'number') {
        throw new SmsTransientError('smsc: the answer is not the documented JSON', 'malformed answer');
      }
      return { providerMessageId: String(body.id) };
    },
  };
}
