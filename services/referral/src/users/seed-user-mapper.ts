import type { Profile } from '@refstack/shared/contracts';
import type { LiveUserRow } from '../db/schema.js';

/**
 * Every translation of our answers into the seeds' shapes. The seeds' clients read ids as JSON
 * integers; ours are bigint strings, so they cross through seedId alone.
 */

/**
 * A bigint id as a JSON integer. Beyond 2^53 a number would silently name another user, so such an
 * id fails the request instead (500) rather than answer with a wrong one.
 */
export function seedId(id: string): number {
  const n = Number(id);
  if (!Number.isSafeInteger(n) || String(n) !== id) {
    throw new Error(`user id ${id} is not a safe integer and cannot be sent as a JSON number`);
  }
  return n;
}

export interface SeedUserDetails {
  id: number;
  invited: Array<{ id: number; phone: string }>;
  phone: string;
  invite_code: string;
  invited_by_code: string | null;
  email: string | null;
  first_name: string | null;
  last_name: string | null;
  is_staff: boolean;
  is_active: true;
  date_joined: string;
  last_login: null;
}

/**
 * The second seed's "user details" of users/current_user/. Its clients read every invitee as an id
 * with a phone, so an invitee deleted since (no phone left) is left out of `invited`.
 */
export function toSeedUserDetails(
  user: LiveUserRow,
  invitees: ReadonlyArray<{ id: string; phone: string | null }>,
): SeedUserDetails {
  return {
    id: seedId(user.id),
    invited: invitees.flatMap((i) => (i.phone === null ? [] : [{ id: seedId(i.id), phone: i.phone }])),
    phone: user.phone,
    invite_code: user.invite_code,
    invited_by_code: user.activated_invite_code,
    email: user.email,
    first_name: user.first_name,
    last_name: user.last_name,
    is_staff: user.is_admin,
    // Nobody is deactivated here: a user who can present a token is active.
    is_active: true,
    date_joined: user.created_at.toISOString(),
    // This system does not record sign-ins, so there is no last login to tell.
    last_login: null,
  };
}

export type Seed1Profile = Omit<Profile, 'id' | 'invited_users'> & { id: number; invited_users: string[] };

/**
 * The first seed's profile: ours with the id a JSON integer (its only id field), in our field order.
 * Its clients read invited_users as phones only, so an invitee deleted since (null in ours) is left
 * out; invited_count still counts them, as ours does.
 */
export function toSeed1Profile(profile: Profile): Seed1Profile {
  return {
    ...profile,
    id: seedId(profile.id),
    invited_users: profile.invited_users.filter((phone): phone is string => phone !== null),
  };
}
