import { phoneCountry } from './phone-country.js';

/** The languages SMS texts are written in; each has its template file in the SMS worker. */
export const SMS_LOCALES = ['en', 'ru'] as const;
export type SmsLocale = (typeof SMS_LOCALES)[number];

/**
 * The language a country's numbers get unless the client asked for another. Countries not listed
 * get SMS_DEFAULT_LOCALE.
 */
const COUNTRY_LOCALES: Readonly<Record<string, SmsLocale>> = { RU: 'ru' };

export function isSmsLocale(value: unknown): value is SmsLocale {
  return typeof value === 'string' && (SMS_LOCALES as readonly string[]).includes(value);
}

/**
 * The language of a message to `phone`: the one the client asked for (its `Accept-Language`, already
 * matched against SMS_LOCALES), else the number's country's, else the operator's default.
 */
export function smsLocaleFor(phone: string, requested: SmsLocale | undefined, defaultLocale: SmsLocale): SmsLocale {
  return requested ?? COUNTRY_LOCALES[phoneCountry(phone)] ?? defaultLocale;
}
