import { randomInt } from 'node:crypto';
import { AppError } from './errors.js';

export const INVITE_CODE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const INVITE_CODE_LENGTH = 6;
export const INVITE_CODE_PATTERN = '^[A-Z0-9]{6}$';

const CANONICAL = new RegExp(INVITE_CODE_PATTERN);

/** A fresh code from a CSPRNG; uniqueness is the database's job (retry on the unique violation). */
export function generateInviteCode(): string {
  let code = '';
  for (let i = 0; i < INVITE_CODE_LENGTH; i += 1) {
    code += INVITE_CODE_ALPHABET[randomInt(INVITE_CODE_ALPHABET.length)];
  }
  return code;
}

/** Trims and upper-cases client input; returns `null` when it cannot be an invite code. */
export function parseInviteCode(input: unknown): string | null {
  if (typeof input !== 'string' || input.length > 64) return null;
  const code = input.trim().toUpperCase();
  return CANONICAL.test(code) ? code : null;
}

/** parseInviteCode for a request field: the canonical code, or the validation_failed both services answer. */
export function requireInviteCode(input: unknown, field = 'invite_code'): string {
  const code = parseInviteCode(input);
  if (code === null) {
    const message = `must be ${INVITE_CODE_LENGTH} letters or digits`;
    throw new AppError('validation_failed', `${field} ${message}`, { errors: [{ field, message }] });
  }
  return code;
}
