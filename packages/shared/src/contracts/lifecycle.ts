import { Type, type Static } from 'typebox';
import { PhoneInput, ProfileSchema } from './api-schemas.js';
import { wireParser } from './internal-api.js';

/**
 * Auth's calls to referral over an account's life (INTERNAL_TOKEN_HEADER, never through the
 * gateway). Auth owns codes and sessions, referral owns users: auth runs phone changes, deletions
 * and exports and asks referral for the user's side of each.
 */

/** `:id` is the user id. */
export const INTERNAL_USER_PATH = '/internal/v1/users/:id';
export const INTERNAL_PHONE_PATH = '/internal/v1/users/:id/phone';
export const INTERNAL_DELETE_PATH = '/internal/v1/users/:id/delete';
export const INTERNAL_EXPORT_PATH = '/internal/v1/users/:id/export';

export const internalPath = (template: string, id: string) => template.replace(':id', encodeURIComponent(id));

export const AccountStatusSchema = Type.Union([
  Type.Literal('active'),
  Type.Literal('blocked'),
  Type.Literal('deleted'),
]);
export type AccountStatus = Static<typeof AccountStatusSchema>;

/** GET INTERNAL_USER_PATH: what a refresh re-reads (404 `not_found` for an id that never existed). */
export const InternalUserSchema = Type.Object({
  id: Type.String(),
  /** null once deleted. */
  phone: Type.Union([Type.String(), Type.Null()]),
  roles: Type.Array(Type.String()),
  status: AccountStatusSchema,
  /**
   * Seconds since the epoch, the latest block's (null: never blocked): the sessions begun at or
   * before it are over, also after an unblock, whether or not auth heard the block announced.
   * Optional while a referral instance from before it may answer (a rolling deploy).
   */
  revoked_before: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
});
export type InternalUser = Static<typeof InternalUserSchema>;

/** POST INTERNAL_PHONE_PATH: 200 with the profile; 409 `phone_taken`; 404 `not_found` (deleted too). */
export const ChangePhoneBody = Type.Object({ phone: PhoneInput });
export const ChangePhoneResultSchema = Type.Object({ user: ProfileSchema, old_phone: Type.String() });
export type ChangePhoneResult = Static<typeof ChangePhoneResultSchema>;

/** POST INTERNAL_DELETE_PATH: 200 with the phone the account had; 404 `not_found` if already gone. */
export const DeleteResultSchema = Type.Object({ old_phone: Type.String() });
export type DeleteResult = Static<typeof DeleteResultSchema>;

/** GET INTERNAL_EXPORT_PATH: referral's part of the caller's data export. */
export const ReferralExportSchema = Type.Object({
  profile: ProfileSchema,
  activation: Type.Union([
    Type.Object({
      invite_code: Type.String(),
      inviter_id: Type.String(),
      activated_at: Type.String({ format: 'date-time' }),
    }),
    Type.Null(),
  ]),
  /** Everyone who activated the caller's code: ids and times only (their phones are theirs). */
  invitees: Type.Array(Type.Object({ id: Type.String(), activated_at: Type.String({ format: 'date-time' }) })),
  is_admin: Type.Boolean(),
  updated_at: Type.String({ format: 'date-time' }),
});
export type ReferralExport = Static<typeof ReferralExportSchema>;

/** What arrives over the wire is not trusted: each answer as its schema says, or undefined (wireParser). */
export const parseInternal = {
  user: wireParser(InternalUserSchema),
  changePhone: wireParser(ChangePhoneResultSchema),
  deleted: wireParser(DeleteResultSchema),
  export: wireParser(ReferralExportSchema),
};
