import { createHmac, randomInt } from 'node:crypto';

/** A fresh code of `length` digits from a CSPRNG (leading zeros allowed). */
export function generateOtp(length: number): string {
  return String(randomInt(0, 10 ** length)).padStart(length, '0');
}

/** What is stored instead of the code: an HMAC bound to the phone, useless without the secret. */
export function hashOtp(secret: string, phone: string, code: string): string {
  return createHmac('sha256', secret).update(`${phone}\u0000${code}`).digest('hex');
}

/**
 * The submitted code in canonical form, or null. A JSON number is accepted and left-padded with
 * zeros (clients that send `123` mean `0123`); a string must already be exactly `length` digits.
 */
export function canonicalOtp(input: string | number, length: number): string | null {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0 || input >= 10 ** length) return null;
    return String(input).padStart(length, '0');
  }
  const trimmed = input.trim();
  return new RegExp(`^[0-9]{${length}}$`).test(trimmed) ? trimmed : null;
}
