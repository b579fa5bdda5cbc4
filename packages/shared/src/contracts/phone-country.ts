import { LRUCache } from 'lru-cache';
import { isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js/max';

/**
 * A code's request asks for its number's country several times (the budget, the SMS language) and
 * its SMS job twice more, each a full parse with the largest metadata. The country of a number
 * never changes, so the most recent are kept; normalising a number records its country at once.
 */
const countries = new LRUCache<string, string>({ max: 10_000 });

/** The ISO country of an E.164 number, or `ZZ` (unknown) when libphonenumber cannot tell. */
export function phoneCountry(e164: string): string {
  let country = countries.get(e164);
  if (country === undefined) {
    country = parsePhoneNumberFromString(e164)?.country ?? 'ZZ';
    countries.set(e164, country);
  }
  return country;
}

/** What parsing `e164` found, kept for `phoneCountry`. */
export function rememberCountry(e164: string, country: string): void {
  countries.set(e164, country);
}

/**
 * Two letters are not yet a country, and a setting naming one libphonenumber does not know (UK for
 * GB) would match no number: the setting's problem, or nothing when `code` is a country.
 */
export function unknownCountryProblem(setting: string, code: string): string | undefined {
  return isSupportedCountry(code) ? undefined : `${setting}: ${code} is not a country code libphonenumber knows`;
}
