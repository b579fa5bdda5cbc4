import { AppError } from '@refstack/shared/contracts';
import type { ProfileChanges } from './user-repository.js';

function cleanName(field: string, value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null) return value;
  const trimmed = value.trim();
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new AppError('validation_failed', `${field} must not contain control characters`, {
      errors: [{ field, message: 'must not contain control characters' }],
    });
  }
  // Code points, as the column's check (char_length) and the schema's maxLength count them; the
  // UTF-16 length would count an emoji, or any character beyond the BMP, twice.
  const characters = [...trimmed].length;
  if (characters < 1 || characters > 64) {
    throw new AppError('validation_failed', `${field} must be 1 to 64 characters after trimming`, {
      errors: [{ field, message: 'must be 1 to 64 characters after trimming' }],
    });
  }
  return trimmed;
}

/**
 * The changes a request asks for, cleaned (trimmed) and validated, before anything is written:
 * every route that changes names or email goes through here, so they all accept the same values.
 * Absent fields stay absent (left as they are); null clears.
 */
export function cleanProfileChanges(body: {
  first_name?: string | null;
  last_name?: string | null;
  email?: string | null;
}): ProfileChanges {
  const { first_name, last_name, email } = body;
  return {
    ...(first_name !== undefined ? { first_name: cleanName('first_name', first_name) } : {}),
    ...(last_name !== undefined ? { last_name: cleanName('last_name', last_name) } : {}),
    ...(email !== undefined ? { email: email === null ? null : email.trim() } : {}),
  };
}
