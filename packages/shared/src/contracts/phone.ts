import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { AppError } from './errors.js';
import { rememberCountry } from './phone-country.js';

export interface PhonePolicy {
  /** Region used for numbers written without a country code (`89123456789`). */
  defaultRegion: string;
  /** ISO 3166 alpha-2 codes whose mobile numbers are accepted, or `'*'` for any. */
  allowedCountries: readonly string[] | '*';
}

export type PhoneResult =
  | { ok: true; e164: string; country: string }
  | { ok: false; reason: 'malformed' | 'invalid' | 'country_not_allowed' }
  | { ok: false; reason: 'not_mobile'; numberType: string };

// Longer input cannot be a phone number and is refused before the parser spends time on it.
const MAX_INPUT_LENGTH = 32;
// Digits plus the punctuation people actually type; anything else (letters, extensions) is refused.
const NOTATION = /^[+]?[\d\s().-]+$/;

/**
 * Normalises any common notation to E.164 and accepts only mobile numbers of the allowed countries.
 * Mobile detection needs libphonenumber's full ("max") metadata.
 */
export function normalizePhone(input: string, policy: PhonePolicy): PhoneResult {
  const raw = input.trim();
  if (raw.length === 0 || raw.length > MAX_INPUT_LENGTH || !NOTATION.test(raw)) {
    return { ok: false, reason: 'malformed' };
  }
  const digits = raw.replace(/\D/g, '');
  if (digits.length < 7 || digits.length > 15) return { ok: false, reason: 'malformed' };

  const parsed = parsePhoneNumberFromString(raw, policy.defaultRegion as CountryCode);
  if (!parsed || !parsed.isValid() || !parsed.country) return { ok: false, reason: 'invalid' };

  const type = parsed.getType();
  // Premium-rate, shared-cost, VoIP, toll-free, pager, personal, fixed-line and unknown types are
  // where SMS pumping sends money; only numbers a country may hand to a phone are accepted.
  if (type !== 'MOBILE' && type !== 'FIXED_LINE_OR_MOBILE') {
    return { ok: false, reason: 'not_mobile', numberType: (type ?? 'UNKNOWN').toLowerCase() };
  }

  if (policy.allowedCountries !== '*' && !policy.allowedCountries.includes(parsed.country)) {
    return { ok: false, reason: 'country_not_allowed' };
  }
  rememberCountry(parsed.number, parsed.country);
  return { ok: true, e164: parsed.number, country: parsed.country };
}

const PHONE_PROBLEM_DETAIL: Record<Exclude<PhoneResult, { ok: true }>['reason'], string> = {
  malformed: 'The phone number is not written in a recognised notation.',
  invalid: 'The phone number is not a valid number.',
  not_mobile: 'Only mobile numbers can receive login codes.',
  country_not_allowed: 'Phone numbers of this country are not accepted.',
};

export function phoneProblemDetail(reason: Exclude<PhoneResult, { ok: true }>['reason']): string {
  return PHONE_PROBLEM_DETAIL[reason];
}

/** The E.164 form of client input, or an `invalid_phone` problem naming why. */
export function requirePhone(input: string, policy: PhonePolicy): string {
  return phoneOrProblem(normalizePhone(input, policy));
}

function phoneOrProblem(result: PhoneResult): string {
  if (!result.ok) {
    throw new AppError('invalid_phone', phoneProblemDetail(result.reason), {
      errors: [{ field: 'phone', message: phoneProblemDetail(result.reason) }],
    });
  }
  return result.e164;
}

/**
 * The E.164 form of a number a code is about to be sent to. Besides `requirePhone`'s checks: a
 * number of a type codes are not sent to, or under one of SMS_DENY_PREFIXES, is a
 * `destination_refused` problem (the type is named; the prefix list is not).
 */
export function requireSmsDestination(input: string, policy: PhonePolicy, denyPrefixes: readonly string[]): string {
  const result = normalizePhone(input, policy);
  if (!result.ok && result.reason === 'not_mobile') {
    throw new AppError(
      'destination_refused',
      `Login codes are not sent to numbers of this type (${result.numberType}).`,
      {
        extensions: { number_type: result.numberType },
      },
    );
  }
  const phone = phoneOrProblem(result);
  if (denyPrefixes.some((prefix) => phone.startsWith(prefix))) {
    throw new AppError('destination_refused', 'Login codes are not sent to numbers of this range.', {
      extensions: { number_type: 'denied_range' },
    });
  }
  return phone;
}
