import type { Migration } from 'kysely';
import * as createUsers from './2026-11-22T00-create-users.js';
import * as inviteesIndexIncludePhone from './2026-11-22T01-invitees-index-include-phone.js';
import * as invitedUsersColumn from './2026-11-30T00-invited-users-column.js';
import * as accountLifecycle from './2026-12-05T00-account-lifecycle.js';
import * as activateInviteFunction from './2026-12-06T00-activate-invite-function.js';
import * as revokedBefore from './2026-12-07T00-revoked-before.js';
import * as searchIndexes from './2026-12-07T01-search-indexes.js';
import * as activationTimeBounds from './2026-12-07T02-activation-time-bounds.js';

/**
 * Every migration by its date-prefixed name. A static list (not a folder scan) so that the same
 * code runs from sources under tsx and from `dist` in a container.
 */
export const migrations: Record<string, Migration> = {
  '2026-11-22T00-create-users': createUsers,
  '2026-11-22T01-invitees-index-include-phone': inviteesIndexIncludePhone,
  '2026-11-30T00-invited-users-column': invitedUsersColumn,
  '2026-12-05T00-account-lifecycle': accountLifecycle,
  '2026-12-06T00-activate-invite-function': activateInviteFunction,
  '2026-12-07T00-revoked-before': revokedBefore,
  '2026-12-07T01-search-indexes': searchIndexes,
  '2026-12-07T02-activation-time-bounds': activationTimeBounds,
};
