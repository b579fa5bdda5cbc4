import {
  AppError,
  INTERNAL_DELETE_PATH,
  INTERNAL_EXPORT_PATH,
  INTERNAL_PHONE_PATH,
  INTERNAL_TOKEN_HEADER,
  INTERNAL_USER_PATH,
  internalPath,
  isErrorCode,
  parseInternal,
  parseSignInResult,
  referralWorkMs,
  REQUEST_ID_HEADER,
  SIGN_IN_PATH,
  type ChangePhoneResult,
  type DeleteResult,
  type InternalUser,
  type ReferralExport,
  type SignInRequest,
  type SignInResult,
} from '@refstack/shared/contracts';
import {
  CHECK_TIMEOUT_MS,
  CONNECT_TIMEOUT_MS,
  requestWhole,
  SEND_WITHIN_MS,
  UpstreamPool,
  type UpstreamAnswer,
} from '@refstack/shared/platform';

export interface ReferralClient {
  /** `timeoutMs`: how long this call may wait for referral's answer. */
  signIn(input: { phone: string; inviteCode?: string }, requestId: string, timeoutMs: number): Promise<SignInResult>;
  /** The user as referral has it now; an id referral does not know is a deleted user. */
  user(id: string, requestId: string): Promise<InternalUser>;
  changePhone(id: string, phone: string, requestId: string): Promise<ChangePhoneResult>;
  deleteUser(id: string, requestId: string): Promise<DeleteResult>;
  exportUser(id: string, requestId: string): Promise<ReferralExport>;
  close(): Promise<void>;
}

export interface ReferralClientLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

function jsonOf(payload: Buffer): Record<string, unknown> | null {
  try {
    return JSON.parse(payload.toString('utf8')) as Record<string, unknown> | null;
  } catch {
    return null;
  }
}

/** A user read by id: one indexed row, which referral's statement limit (2 s) bounds anyway. */
export const USER_READ_TIMEOUT_MS = 3000;
/** An account's export: two statements of up to 2 s each in referral. */
const EXPORT_TIMEOUT_MS = 5000;

/**
 * How long a phone change or a deletion may wait for referral: longer than referral's own bound on
 * it (referralWorkMs), so that auth does not give up on a change referral may still commit (unless
 * the call first waited in vain for a connection to another instance: then a 503 may follow a
 * change that happened, which the same request repeated finishes, as the contract says). With the
 * user read before it (USER_READ_TIMEOUT_MS), the request stays 2 s inside the gateway's
 * UPSTREAM_TIMEOUT_MS, which production keeps above REFERRAL_TIMEOUT_MS + 5 s.
 */
export function changeCallTimeoutMs(referralTimeoutMs: number): number {
  return Math.max(referralTimeoutMs, referralWorkMs(referralTimeoutMs) + 1000);
}

/**
 * Auth's way to users: the referral service's internal routes, over a keep-alive pool per referral
 * instance (REFERRAL_URLS), round-robin, with the gateway's passive and active health. A call that
 * never reached an instance goes to the next one; one that reached it is not repeated (a read whose
 * connection dropped is), as referral may have acted on it. Refusals of the caller's own request
 * come back as the same problem; anything else that goes wrong is a 503, so the caller can retry
 * (a sign-in keeps its code).
 */
export function createReferralClient(options: {
  bases: readonly string[];
  internalToken: string;
  log: ReferralClientLog;
  /** How often each instance's readiness is asked (only with more than one instance). */
  probeIntervalMs: number;
  ejectMs: number;
  /** REFERRAL_TIMEOUT_MS: see changeCallTimeoutMs. */
  referralTimeoutMs: number;
}): ReferralClient {
  const changeMs = changeCallTimeoutMs(options.referralTimeoutMs);
  const pool = new UpstreamPool('referral', options.bases, {
    pool: { connections: 32, keepAliveTimeout: 30_000, connectTimeout: CONNECT_TIMEOUT_MS },
    probeIntervalMs: options.bases.length > 1 ? options.probeIntervalMs : 0,
    ejectMs: options.ejectMs,
    probeTimeoutMs: CHECK_TIMEOUT_MS - 500,
  });
  pool.setLog(options.log);
  pool.start();
  const unavailable = (cause: unknown) =>
    new AppError(
      'service_unavailable',
      'The user service is temporarily unavailable; try again shortly.',
      { retryAfter: 1 },
      cause,
    );

  /** One call; the answer's body when it is 200, else the problem it stands for. */
  async function call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    requestId: string,
    timeoutMs: number,
  ): Promise<unknown> {
    let response: UpstreamAnswer | undefined;
    let failure: unknown;
    // One deadline for the call: a second instance gets only what the first left of it, so the
    // bounds the callers rely on (a sign-in inside its verify's deadline) hold.
    const deadline = performance.now() + timeoutMs;
    for (const instance of pool.order().slice(0, 2)) {
      const left = Math.floor(deadline - performance.now());
      if (left <= 0) break;
      try {
        // A call that finds all 32 connections busy waits for one no longer than it may wait for
        // its answer (2 s at most), then is dropped unsent: queued without limit, a phone change
        // or a sign-in would reach referral after the client had its 503 and act for nobody.
        response = await requestWhole(
          instance.pool,
          {
            path,
            method,
            headers: {
              ...(body === undefined ? {} : { 'content-type': 'application/json' }),
              [INTERNAL_TOKEN_HEADER]: options.internalToken,
              [REQUEST_ID_HEADER]: requestId,
            },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            headersTimeout: left,
            bodyTimeout: left,
          },
          // undici's timers bound the wait for the headers and each silence; this, the whole answer,
          // by the call's deadline however long the wait for a connection took.
          { sendWithinMs: Math.min(SEND_WITHIN_MS, left), answerBy: deadline },
        );
        break;
      } catch (error) {
        failure = error;
        const reason = (error as Error).message;
        options.log.error({ instance: instance.base, reason }, 'referral service unreachable');
        const kind = pool.failed(instance, error);
        if (kind !== 'not_reached' && !(kind === 'dropped' && method === 'GET')) break;
      }
    }
    if (!response) throw unavailable(failure);
    const answer = jsonOf(response.payload);
    if (response.status === 200) return answer;
    const code = answer?.['code'];
    // Only the client's own mistakes (refusals, validation) pass through; a 401 here means the
    // services disagree on INTERNAL_TOKEN, which is an operator problem, not the user's.
    if (response.status >= 400 && response.status < 500 && response.status !== 401 && isErrorCode(code)) {
      throw new AppError(code, typeof answer?.['detail'] === 'string' ? answer['detail'] : undefined);
    }
    options.log.error({ status: response.status, code, path }, 'referral call failed');
    throw unavailable(null);
  }

  /**
   * A call about the caller's own account. Referral's `not_found` means the account was deleted
   * while the caller's session was still live (a deletion committing, or its last steps still
   * ahead): to the caller that is the end of the session, as everywhere else.
   */
  async function ownAccount(answer: Promise<unknown>): Promise<unknown> {
    try {
      return await answer;
    } catch (error) {
      if (error instanceof AppError && error.code === 'not_found')
        throw new AppError('unauthorized', 'The user of this token no longer exists.');
      throw error;
    }
  }

  /** An answer that does not match its schema is a version skew between the services: a 503. */
  function parsed<T>(value: T | undefined, what: string): T {
    if (value !== undefined) return value;
    options.log.error({ what }, 'referral answer does not match its schema');
    throw unavailable(null);
  }

  return {
    async signIn(input, requestId, timeoutMs) {
      const body: SignInRequest = {
        phone: input.phone,
        ...(input.inviteCode ? { invite_code: input.inviteCode } : {}),
      };
      try {
        return parsed(parseSignInResult(await call('POST', SIGN_IN_PATH, body, requestId, timeoutMs)), 'sign-in');
      } catch (error) {
        if (!(error instanceof AppError) || error.code !== 'service_unavailable') throw error;
        throw new AppError(
          'service_unavailable',
          'Sign-in is temporarily unavailable; the code stays valid, try again shortly.',
          { retryAfter: 1 },
          error,
        );
      }
    },
    async user(id, requestId) {
      try {
        const answer = await call(
          'GET',
          internalPath(INTERNAL_USER_PATH, id),
          undefined,
          requestId,
          USER_READ_TIMEOUT_MS,
        );
        return parsed(parseInternal.user(answer), 'user');
      } catch (error) {
        if (error instanceof AppError && error.code === 'not_found')
          return { id, phone: null, roles: [], status: 'deleted' };
        throw error;
      }
    },
    async changePhone(id, phone, requestId) {
      const answer = await ownAccount(
        call('POST', internalPath(INTERNAL_PHONE_PATH, id), { phone }, requestId, changeMs),
      );
      return parsed(parseInternal.changePhone(answer), 'phone change');
    },
    async deleteUser(id, requestId) {
      const answer = await ownAccount(
        call('POST', internalPath(INTERNAL_DELETE_PATH, id), undefined, requestId, changeMs),
      );
      return parsed(parseInternal.deleted(answer), 'deletion');
    },
    async exportUser(id, requestId) {
      const answer = await ownAccount(
        call('GET', internalPath(INTERNAL_EXPORT_PATH, id), undefined, requestId, EXPORT_TIMEOUT_MS),
      );
      return parsed(parseInternal.export(answer), 'export');
    },
    close: () => pool.close(),
  };
}
