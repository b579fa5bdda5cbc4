import type { LightMyRequestResponse } from 'fastify';
import type { Test } from 'tap';
import { Type, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { ProfileSchema, TokensSchema, type ErrorCode } from '@refstack/shared/contracts';
import type { Teardownable } from '@refstack/shared/testing';
import { createReferralClient, type ReferralClient } from '../../src/referral-client.js';
import { INTERNAL_TOKEN, QUIET, startReferralStandIn, type AuthTestContext } from '../auth-test-app.js';

// What the seeds' clients read, written down here rather than taken from the routes, so that a
// route schema that drifts from the seed's shape fails these checks. No extra members are allowed:
// an answer carrying more than listed (the OTP code, say) fails.

const strict = { additionalProperties: false } as const;

const sendCodeFields = {
  message: Type.String(),
  phone: Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$' }),
  expires_in: Type.Integer({ minimum: 1 }),
  resend_in: Type.Integer({ minimum: 0 }),
};

export const SecondSeedSendCodeAnswer = Type.Object(sendCodeFields, strict);

export const SecondSeedSignInAnswer = Type.Object(
  {
    access: Type.String({ minLength: 1 }),
    refresh: Type.String({ minLength: 1 }),
    user: ProfileSchema,
    tokens: Type.Object(TokensSchema.properties, strict),
    created: Type.Boolean(),
  },
  strict,
);

export const SecondSeedRefreshAnswer = Type.Object(
  { access: Type.String({ minLength: 1 }), token_type: Type.Literal('Bearer'), expires_in: Type.Integer() },
  strict,
);

export const SecondSeedVerifyAnswer = Type.Object({}, strict);

export const FirstSeedSendCodeAnswer = Type.Object(
  { ...sendCodeFields, message: Type.String({ pattern: '^Код отправлен по номеру: \\+[0-9]+$' }) },
  strict,
);

export const FirstSeedVerifyAnswer = Type.Object(
  {
    user: Type.Object({ ...ProfileSchema.properties, id: Type.Integer({ minimum: 1 }) }, strict),
    tokens: Type.Object(TokensSchema.properties, strict),
    created: Type.Boolean(),
  },
  strict,
);

/** Why a value fails a schema, for the assertion message. */
export function shapeErrors(schema: TSchema, value: unknown): string {
  return [...Value.Errors(schema, value)].map((e) => `${e.instancePath} ${e.message}`).join('; ');
}

/** A problem+json answer with this status on the wire and in the body, and our stable code. */
export function assertProblem(t: Test, res: LightMyRequestResponse, status: number, code: ErrorCode, what = '') {
  t.equal(res.statusCode, status, `${what} status`.trim());
  t.match(res.headers['content-type'], /^application\/problem\+json/, `${what} problem+json`.trim());
  const body = res.json() as { status: number; code: string; type: string };
  t.equal(body.code, code, `${what} code`.trim());
  t.equal(body.status, status, `${what} the body's status is the one on the wire`.trim());
  t.equal(body.type, `urn:refstack:problem:${code}`, `${what} type`.trim());
  if (status === 429) t.match(res.headers['retry-after'], /^[1-9][0-9]*$/, `${what} Retry-After`.trim());
}

export async function post(ctx: AuthTestContext, url: string, payload: unknown, from?: string) {
  return ctx.app.inject({
    method: 'POST',
    url,
    payload: payload as Record<string, unknown>,
    ...(from ? { remoteAddress: from } : {}),
  });
}

/**
 * Asks for codes until one satisfies `wanted` (codes are random: a leading zero comes one time in
 * ten). The app must allow immediate resends; returns the code now valid.
 */
export async function codeWhere(ctx: AuthTestContext, phone: string, wanted: (code: string) => boolean) {
  for (let i = 0; i < 300; i++) {
    const sent = await post(ctx, '/api/v1/auth/send-code', { phone });
    if (sent.statusCode !== 200) throw new Error(`send-code answered ${sent.statusCode}: ${sent.body}`);
    const code = ctx.outbox.lastCodeFor(phone);
    if (wanted(code)) return code;
  }
  throw new Error('no such code in 300 tries');
}

/** Limits that let a test ask for many codes at once. */
export const MANY_CODES = {
  OTP_RESEND_SECONDS: '0',
  OTP_MAX_SENDS_PER_HOUR: '1000000',
  SEND_CODE_IP_PER_HOUR: '100000000',
};

/**
 * The referral stand-in (it refuses the invite codes of REFUSED_INVITES as referral does), read
 * through auth's real referral client.
 */
export async function inviteRefusingReferral(t: Teardownable): Promise<ReferralClient> {
  const standIn = await startReferralStandIn(t);
  const client = createReferralClient({
    bases: [standIn.url],
    internalToken: INTERNAL_TOKEN,
    log: QUIET,
    probeIntervalMs: 0,
    ejectMs: 10_000,
    referralTimeoutMs: 5000,
  });
  t.teardown(() => client.close());
  return client;
}
