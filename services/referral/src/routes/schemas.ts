import { Type } from 'typebox';
import { InviteCodeInput, ProfileSchema, type ErrorCode } from '@refstack/shared/contracts';

/** Every way an activation is refused, wherever one is asked for. */
export const INVITE_REFUSALS = [
  'invite_not_found',
  'invite_already_activated',
  'invite_self',
  'invite_cycle',
] as const satisfies readonly ErrorCode[];

export const Name = Type.Union([Type.String({ maxLength: 256 }), Type.Null()], {
  description: 'Trimmed, 1 to 64 characters; null clears it.',
});
export const Email = Type.Union([Type.String({ format: 'email', maxLength: 254 }), Type.Null()], {
  description: 'Unique, ignoring case; null clears it.',
});

export const PatchProfileBody = Type.Object(
  { first_name: Type.Optional(Name), last_name: Type.Optional(Name), email: Type.Optional(Email) },
  { additionalProperties: false },
);

export const ActivateInviteBody = Type.Object({ invite_code: InviteCodeInput });
export const ActivateInviteReply = Type.Object(
  {
    status: Type.Literal('activated'),
    activated_invite_code: Type.String({ examples: ['AB12CD'] }),
  },
  { description: 'Activated (or already activated with this same code).' },
);

const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 50 });
const Cursor = Type.String({ maxLength: 200, description: 'Opaque: a next_cursor from the previous page.' });

export const InvitedQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) });
export const InvitedReply = Type.Object(
  {
    items: Type.Array(
      Type.Object({
        id: Type.String(),
        phone: Type.Union([Type.String(), Type.Null()], {
          description: 'E.164; null for a user deleted since, who stays in the list and in total.',
        }),
        activated_at: Type.String({ format: 'date-time' }),
      }),
    ),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
    total: Type.Integer({ description: 'How many users activated this code.' }),
  },
  { description: 'One page of invitees, newest first.' },
);

export const UserIdParams = Type.Object({ id: Type.String({ maxLength: 32 }) });
export const PublicCardSchema = Type.Object(
  {
    id: Type.String(),
    invite_code: Type.String(),
    invited_count: Type.Integer(),
    first_name: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false, description: 'Public card: no phone, no email.' },
);

const { invited_users: _embedded, ...listItemProperties } = ProfileSchema.properties;
export const ProfileListItemSchema = Type.Object(listItemProperties, { additionalProperties: false });

export const UsersQuery = Type.Object({
  search: Type.Optional(
    Type.String({
      maxLength: 64,
      pattern: '^[^\\u0000-\\u001f\\u007f]*$',
      description: 'Phone digits, an invite code, or the start of a name.',
    }),
  ),
  limit: Type.Optional(Limit),
  cursor: Type.Optional(Cursor),
});
export const UsersReply = Type.Object(
  { items: Type.Array(ProfileListItemSchema), next_cursor: Type.Union([Type.String(), Type.Null()]) },
  { description: 'One page of users, newest first.' },
);
