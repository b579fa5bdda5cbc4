import { Type } from 'typebox';
import {
  ERROR_CATALOG,
  InviteCodeInput,
  ProfileSchema,
  problemResponses,
  type ErrorCode,
  type ProblemResponse,
} from '@refstack/shared/contracts';
import { ActivateInviteReply, Email, Name } from './schemas.js';

/** The shapes of the seeds' own operations: ids are JSON integers there. */

const SeedId = Type.Integer({ minimum: 1, examples: [3] });

export const SeedUserDetailsSchema = Type.Object(
  {
    id: SeedId,
    invited: Type.Array(Type.Object({ id: SeedId, phone: Type.String({ examples: ['+79991234567'] }) }), {
      description: 'Users who activated this code, newest first, at most 100; a user deleted since is left out.',
    }),
    phone: Type.String({ examples: ['+79123456789'] }),
    invite_code: Type.String({ examples: ['AB12CD'] }),
    invited_by_code: Type.Union([Type.String(), Type.Null()], { description: 'The activated invite code.' }),
    email: Type.Union([Type.String(), Type.Null()]),
    first_name: Type.Union([Type.String(), Type.Null()]),
    last_name: Type.Union([Type.String(), Type.Null()]),
    is_staff: Type.Boolean({ description: 'Whether the user is an admin.' }),
    is_active: Type.Boolean({ description: 'Always true.' }),
    date_joined: Type.String({ format: 'date-time' }),
    last_login: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'Always null: sign-ins are not recorded.',
    }),
  },
  { additionalProperties: false, description: 'User details (second seed).' },
);

/** Keys besides these are ignored, as the seed's clients may send the whole user back. */
export const SeedPatchUserBody = Type.Object(
  {
    first_name: Type.Optional(Name),
    last_name: Type.Optional(Name),
    email: Type.Optional(Email),
    invited_by_code: Type.Optional(
      Type.Union([InviteCodeInput, Type.Null()], {
        description: 'Activates this invite code (once, as PUT /api/v1/profile/invite); null leaves it as it is.',
      }),
    ),
  },
  { additionalProperties: true },
);

export const Seed1ProfileSchema = Type.Object(
  {
    ...ProfileSchema.properties,
    id: SeedId,
    invited_users: Type.Array(Type.String({ examples: ['+79991234567'] }), {
      description:
        'E.164 phones of the users who activated this code, newest first, at most 100; a user deleted since ' +
        'is left out (and still counted in invited_count).',
    }),
  },
  { additionalProperties: false, description: 'A user profile (first seed): the id is an integer.' },
);

export const SEED1_INVITE_ACTIVATED = 'Код успешно активирован' as const;
export const Seed1ActivateInviteReply = Type.Object(
  {
    status: Type.Literal(SEED1_INVITE_ACTIVATED),
    activated_invite_code: ActivateInviteReply.properties.activated_invite_code,
  },
  { description: 'Activated (or already activated with this same code).' },
);

/**
 * Problem responses where a seed answers a code with its own status instead of the catalog's:
 * the `code` is ours, the status theirs.
 */
export function seedProblemResponses(
  statuses: Partial<Record<ErrorCode, number>>,
  ...codes: ErrorCode[]
): Record<number, ProblemResponse> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = statuses[code] ?? ERROR_CATALOG[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<number, ProblemResponse> = {};
  for (const [status, list] of byStatus) {
    const [first] = list;
    const entry = first === undefined ? undefined : problemResponses(first)[ERROR_CATALOG[first].status];
    if (!entry) continue;
    const content = Object.fromEntries(
      Object.entries(entry.content).map(([type, media]) => [
        type,
        { ...media, example: { ...(media.example as object), status } },
      ]),
    );
    responses[status] = {
      description: `Problem details; \`code\` is one of ${list.map((c) => `\`${c}\``).join(', ')}.`,
      content,
    };
  }
  return responses;
}
