import type { Profile } from '@refstack/shared/contracts';
import type { LiveUserRow } from '../db/schema.js';

export interface PublicCard {
  id: string;
  invite_code: string;
  invited_count: number;
  first_name: string | null;
  created_at: string;
}

export type ProfileListItem = Omit<Profile, 'invited_users'>;

export function toListItem(row: LiveUserRow): ProfileListItem {
  return {
    id: row.id,
    phone: row.phone,
    invite_code: row.invite_code,
    activated_invite_code: row.activated_invite_code,
    invited_count: row.invited_count,
    first_name: row.first_name,
    last_name: row.last_name,
    email: row.email,
    created_at: row.created_at.toISOString(),
  };
}

export function toProfile(row: LiveUserRow): Profile {
  return { ...toListItem(row), invited_users: row.invited_users };
}

/** What any signed-in user may see of another: no phone, no email. */
export function toPublicCard(row: LiveUserRow): PublicCard {
  return {
    id: row.id,
    invite_code: row.invite_code,
    invited_count: row.invited_count,
    first_name: row.first_name,
    created_at: row.created_at.toISOString(),
  };
}
