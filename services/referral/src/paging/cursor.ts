import { AppError } from '@refstack/shared/contracts';

/**
 * Opaque keyset cursors. Clients pass them back unchanged; anything that does not decode to the
 * expected shape is a 400, never a 500.
 */
export function encodeCursor(parts: readonly string[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string, arity: number, isValid: (parts: string[]) => boolean): string[] {
  const invalid = () =>
    new AppError('validation_failed', 'cursor is not valid; pass back a next_cursor unchanged', {
      errors: [{ field: 'cursor', message: 'is not a cursor this API issued' }],
    });
  if (cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (
    !Array.isArray(parts) ||
    parts.length !== arity ||
    !parts.every((p) => typeof p === 'string') ||
    !isValid(parts as string[])
  )
    throw invalid();
  return parts as string[];
}

const BIGINT_DIGITS = /^[1-9][0-9]{0,18}$/;
const BIGINT_MAX = '9223372036854775807';

/** A positive PostgreSQL bigint in its plain decimal form (19 digits may still be out of range). */
export function isBigintId(value: string | undefined): value is string {
  return value !== undefined && BIGINT_DIGITS.test(value) && (value.length < BIGINT_MAX.length || value <= BIGINT_MAX);
}
// PostgreSQL's text form of timestamptz, e.g. 2026-11-22 06:47:02.123456+00
const PG_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-](\d{2})(?::(\d{2}))?$/;
// PostgreSQL refuses UTC offsets beyond 15:59.
const MAX_OFFSET_HOURS = 15;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * A time as the invitee cursor carries it: PostgreSQL's text form of a timestamptz that can exist.
 * The shape alone lets through month 13 or hour 25, which PostgreSQL then refuses mid-query; 24:00
 * and a 60th second, which it would accept, are never in a cursor it wrote, so they are refused too.
 */
export function isPgTimestamp(value: string | undefined): value is string {
  const match = PG_TIMESTAMP.exec(value ?? '');
  if (!match) return false;
  // An absent offset minute is 0; the defaults only satisfy the index checks, every group is there.
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, offsetHours = 0, offsetMinutes = 0] = match
    .slice(1)
    .map((group) => Number(group ?? 0));
  return (
    year >= 1 &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month) &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHours <= MAX_OFFSET_HOURS &&
    offsetMinutes <= 59
  );
}
