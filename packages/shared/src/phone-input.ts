import { AppError } from './errors.js';
import { normalizePhone, phoneProblemDetail, type PhonePolicy } from './phone.js';

/** The E.164 form of client input, or an `invalid_phone` problem naming why. */
export function requirePhone(input: string, policy: PhonePolicy): string {
  const result = normalizePhone(input, policy);
  if (!result.ok) {
    throw new AppError('invalid_phone', phoneProblemDetail(result.reason), { errors: [{ field: 'phone', message: phoneProblemDetail(result.reason) }] });
  }
  return result.e164;
}
