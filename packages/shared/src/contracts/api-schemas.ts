import { Type, type Static, type TSchema } from 'typebox';
import { ERROR_CATALOG, type ErrorCode } from './errors.js';

/** RFC 9457 problem details as every service answers them. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI naming the problem type: urn:refstack:problem:<code>' }),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable machine-readable reason; switch on this.' }),
    detail: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
    retry_after: Type.Optional(Type.Integer({ description: 'Seconds; also sent as the Retry-After header.' })),
    attempts_left: Type.Optional(Type.Integer()),
  },
  { additionalProperties: true },
);

const PROBLEM_MEDIA_TYPE = 'application/problem+json';

export interface ProblemResponse {
  description: string;
  content: Record<string, { schema: TSchema; example: unknown }>;
}

function problemExample(code: ErrorCode): unknown {
  const { status, title } = ERROR_CATALOG[code];
  const example: Record<string, unknown> = { type: `urn:refstack:problem:${code}`, title, status, code, detail: title };
  if (status === 429) example['retry_after'] = 60;
  if (code === 'otp_invalid') example['attempts_left'] = 4;
  if (code === 'validation_failed')
    example['errors'] = [{ field: 'phone', message: "must have required property 'phone'" }];
  return example;
}

/**
 * Response entries for the given error codes, grouped by status, each documented with its codes.
 * Used in route schemas so the OpenAPI document lists every error a route can answer.
 */
export function problemResponses(...codes: ErrorCode[]): Record<number, ProblemResponse> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const { status } = ERROR_CATALOG[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<number, ProblemResponse> = {};
  for (const [status, list] of byStatus) {
    const codesText = list.map((c) => `\`${c}\``).join(', ');
    responses[status] = {
      description: `Problem details; \`code\` is one of ${codesText}.`,
      content: { [PROBLEM_MEDIA_TYPE]: { schema: ProblemSchema, example: problemExample(list[0] as ErrorCode) } },
    };
  }
  return responses;
}

export const PhoneInput = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'Any common notation; normalised to E.164.',
  examples: ['+79123456789'],
});
export const InviteCodeInput = Type.String({
  minLength: 1,
  maxLength: 64,
  description: '6 characters A-Z0-9; trimmed, case-insensitive.',
  examples: ['AB12CD'],
});

export const ProfileSchema = Type.Object(
  {
    id: Type.String({ examples: ['1'] }),
    phone: Type.String({ examples: ['+79123456789'] }),
    invite_code: Type.String({ examples: ['AB12CD'] }),
    activated_invite_code: Type.Union([Type.String(), Type.Null()]),
    invited_users: Type.Array(Type.Union([Type.String(), Type.Null()]), {
      description:
        'E.164 phones of the users who activated this code, newest first, at most 100; `null` for an ' +
        'account deleted since (it still counts in `invited_count`).',
    }),
    invited_count: Type.Integer(),
    first_name: Type.Union([Type.String(), Type.Null()]),
    last_name: Type.Union([Type.String(), Type.Null()]),
    email: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false, description: 'A user profile.' },
);
export type Profile = Static<typeof ProfileSchema>;

export const TokensSchema = Type.Object(
  {
    access: Type.String({ description: 'ES256 JWT' }),
    refresh: Type.String({ description: 'Opaque; single use, rotates on refresh.' }),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'Seconds until the access token expires.' }),
  },
  { description: 'An access token and the next refresh token.' },
);
export type Tokens = Static<typeof TokensSchema>;
