import Negotiator from 'negotiator';
import { isSmsLocale, type SmsLocale } from '@refstack/shared/contracts';
import type { SendCodeInput } from '../otp/otp-service.js';

/**
 * The SMS language a client asked for in `Accept-Language`: its most preferred language (by q-value)
 * that has SMS texts, or undefined (no header, only `*`, or nothing we write), in which case the
 * number's country decides.
 */
export function requestedSmsLocale(headers: { 'accept-language'?: string | undefined }): SmsLocale | undefined {
  if (!headers['accept-language']) return undefined;
  for (const tag of new Negotiator({ headers }).languages()) {
    const primary = tag.split('-')[0]?.toLowerCase();
    if (isSmsLocale(primary)) return primary;
  }
  return undefined;
}

/** What every send-code path (the seeds' included) hands the OTP service from its request. */
export function sendCodeInput(request: {
  body: { phone: string; captcha_token?: string | undefined };
  ip: string;
  headers: { 'accept-language'?: string | undefined };
}): SendCodeInput {
  return {
    phone: request.body.phone,
    ip: request.ip,
    locale: requestedSmsLocale(request.headers),
    captchaToken: request.body.captcha_token,
  };
}
