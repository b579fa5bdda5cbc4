import { Pool } from 'undici';
import {
  AppError,
  INTERNAL_TOKEN_HEADER,
  isErrorCode,
  parseSignInResult,
  REQUEST_ID_HEADER,
  SIGN_IN_PATH,
  type SignInRequest,
  type SignInResult,
} from '@refstack/shared/contracts';

export interface ReferralClient {
  /** `timeoutMs`: how long this call may wait for referral's answer. */
  signIn(input: { phone: string; inviteCode?: string }, requestId: string, timeoutMs: number): Promise<SignInResult>;
  close(): Promise<void>;
}

export interface ReferralClientLog {
  error(obj: object, msg: string): void;
}

/**
 * Auth's only way to users: the referral service's internal sign-in, over a keep-alive pool.
 * Invite refusals come back as the same problem; anything else that goes wrong is a 503, so the
 * caller keeps its code and can retry.
 */
export function createReferralClient(options: {
  baseUrl: string;
  internalToken: string;
  log: ReferralClientLog;
}): ReferralClient {
  const pool = new Pool(options.baseUrl, { connections: 32, keepAliveTimeout: 30_000, connectTimeout: 2000 });
  const unavailable = (cause: unknown) =>
    new AppError(
      'service_unavailable',
      'Sign-in is temporarily unavailable; the code stays valid, try again shortly.',
      { retryAfter: 1 },
      cause,
    );

  return {
    async signIn(input, requestId, timeoutMs) {
      let response;
      try {
        response = await pool.request({
          path: SIGN_IN_PATH,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            [INTERNAL_TOKEN_HEADER]: options.internalToken,
            [REQUEST_ID_HEADER]: requestId,
          },
          body: JSON.stringify({
            phone: input.phone,
            ...(input.inviteCode ? { invite_code: input.inviteCode } : {}),
          } satisfies SignInRequest),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
      } catch (error) {
        options.log.error({ reason: (error as Error).message }, 'referral service unreachable');
        throw unavailable(error);
      }
      const body = (await response.body.json().catch(() => null)) as Record<string, unknown> | null;
      if (response.statusCode === 200) {
        const result = parseSignInResult(body);
        if (result) return result;
        // The services disagree on the contract (a version skew): the caller's code stays valid.
        options.log.error({ status: 200 }, 'referral sign-in answer does not match its schema');
        throw unavailable(null);
      }
      const code = body?.['code'];
      // Only the client's own mistakes (invite refusals, validation) pass through; a 401 here
      // means the services disagree on INTERNAL_TOKEN, which is an operator problem, not the user's.
      if (response.statusCode >= 400 && response.statusCode < 500 && response.statusCode !== 401 && isErrorCode(code)) {
        throw new AppError(code, typeof body?.['detail'] === 'string' ? body['detail'] : undefined);
      }
      options.log.error({ status: response.statusCode, code }, 'referral sign-in failed');
      throw unavailable(null);
    },
    close: () => pool.close(),
  };
}
