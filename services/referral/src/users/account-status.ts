import { AppError, type AccountStatus } from '@refstack/shared/contracts';
import { isLive, type LiveUserRow, type UserRow } from '../db/schema.js';

export function userGone(): AppError {
  return new AppError('unauthorized', 'The user of this token no longer exists.');
}

export function accountBlocked(): AppError {
  return new AppError('account_blocked', 'This account is blocked.');
}

export function statusOf(row: Pick<UserRow, 'blocked_at' | 'deleted_at'>): AccountStatus {
  if (row.deleted_at !== null) return 'deleted';
  return row.blocked_at !== null ? 'blocked' : 'active';
}

/**
 * The caller of a request as an account that may still act: a deleted (or never existing) one is
 * gone (401, as its token names nobody now), a blocked one is refused (403) even while its token
 * still verifies, until the revocation reaches this instance or its token expires.
 */
export function requireStatusActive(status: AccountStatus | undefined): void {
  if (status === undefined || status === 'deleted') throw userGone();
  if (status === 'blocked') throw accountBlocked();
}

export function requireActive(row: UserRow | undefined): LiveUserRow {
  if (!row || !isLive(row)) throw userGone();
  requireStatusActive(statusOf(row));
  return row;
}
