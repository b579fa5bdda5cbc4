import { Type, type TSchema } from 'typebox';
import { Value } from 'typebox/value';

/**
 * The seeds' shapes as their clients read them, written out here rather than imported from the
 * routes, so that an answer is held to the seed and not to our own description of it. Ids are
 * JSON integers: a string id fails Type.Integer().
 */

const Nullable = (schema: TSchema) => Type.Union([schema, Type.Null()]);
const DateTime = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{3})?Z$' });
const E164 = Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$' });

export const SeedUserDetails = Type.Object(
  {
    id: Type.Integer({ minimum: 1 }),
    invited: Type.Array(
      Type.Object({ id: Type.Integer({ minimum: 1 }), phone: E164 }, { additionalProperties: false }),
    ),
    phone: E164,
    invite_code: Type.String({ pattern: '^[A-Z0-9]{6}$' }),
    invited_by_code: Nullable(Type.String({ pattern: '^[A-Z0-9]{6}$' })),
    email: Nullable(Type.String()),
    first_name: Nullable(Type.String()),
    last_name: Nullable(Type.String()),
    is_staff: Type.Boolean(),
    is_active: Type.Literal(true),
    date_joined: DateTime,
    last_login: Type.Null(),
  },
  { additionalProperties: false },
);

export const Seed1Profile = Type.Object(
  {
    id: Type.Integer({ minimum: 1 }),
    phone: E164,
    invite_code: Type.String({ pattern: '^[A-Z0-9]{6}$' }),
    activated_invite_code: Nullable(Type.String()),
    invited_users: Type.Array(E164),
    invited_count: Type.Integer({ minimum: 0 }),
    first_name: Nullable(Type.String()),
    last_name: Nullable(Type.String()),
    email: Nullable(Type.String()),
    created_at: DateTime,
  },
  { additionalProperties: false },
);

/** The first error TypeBox finds, for a message that says why a shape did not match. */
export function shapeErrors(schema: TSchema, value: unknown): string {
  return [...Value.Errors(schema, value)]
    .slice(0, 3)
    .map((e) => `${e.instancePath} ${e.message}`)
    .join('; ');
}

export { Value };
