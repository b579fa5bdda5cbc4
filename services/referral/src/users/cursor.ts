import { AppError } from '@refstack/shared';

/**
 * Opaque keyset cursors. Clients pass them back unchanged; anything that does not decode to the
 * expected shape is a 400, never a 500.
 */
export function encodeCursor(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string, arity: number, isValid: (parts: string[]) => boolean): string[] {
  const invalid = () => new AppError('validation_failed', 'cursor is not valid; pass back a next_cursor unchanged', { errors: [{ field: 'cursor', message: 'is not a cursor this API issued' }] });
  if (cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parts) || parts.length !== arity || !parts.every((p) => typeof p === 'string') || !isValid(parts as string[])) throw invalid();
  return parts as string[];
}

const BIGINT_DIGITS = /^[1-9][0-9]{0,18}$/;
const BIGINT_MAX = '9223372036854775807';

/** A positive PostgreSQL bigint in its plain decimal form (19 digits may still be out of range). */
export function isBigintId(value: string | undefined): value is string {
  return value !== undefined && BIGINT_DIGITS.test(value) && (value.length < BIGINT_MAX.length || value <= BIGINT_MAX);
}
// PostgreSQL's text form of timestamptz, e.g. 2026-11-22 06:47:02.123456+00
export const PG_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/;
