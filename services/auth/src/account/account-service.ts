import { randomUUID } from 'node:crypto';
import {
  AppError,
  AUTH_VERIFY_OVERHEAD_MS,
  normalizePhone,
  requirePhone,
  type Config,
  type Profile,
} from '@refstack/shared/contracts';
import type { SmsQueue } from '@refstack/shared/platform';
import type { OtpClaim, OtpService, SendCodeInput, SendCodeResult } from '../otp/otp-service.js';
import type { ReferralClient } from '../referral-client.js';
import type { SessionStore } from '../tokens/session-store.js';
import type { Caller, TokenService } from '../tokens/token-service.js';
import type { UnfinishedChanges } from './unfinished-change.js';

/** How recent the session's sign-in must be for a phone change. */
export const STEP_UP_SECONDS = 600;
/**
 * How long a move or deletion may stay unfinished before auth's sweep finishes it: far longer than
 * any request that could still be running its steps, which all run while the code is claimed
 * (REFERRAL_TIMEOUT_MS + AUTH_VERIFY_OVERHEAD_MS), and at least a minute.
 */
export function abandonedAfterMs(referralTimeoutMs: number): number {
  return Math.max(60_000, 2 * (referralTimeoutMs + AUTH_VERIFY_OVERHEAD_MS));
}

export interface AccountServiceDeps {
  otp: OtpService;
  referral: ReferralClient;
  tokens: TokenService;
  sessions: SessionStore;
  sms: SmsQueue;
  /**
   * Forgets what auth's Redis holds under a phone (codes, counters, message records), found through
   * the phone's own lists: the work grows with what the phone has, not with the keyspace.
   */
  forgetPhone: (phone: string) => Promise<void>;
  unfinished: UnfinishedChanges;
  config: Pick<Config, 'phone' | 'otp' | 'referralTimeoutMs'>;
  now: () => number;
}

export interface SessionView {
  id: string;
  created_at: string;
  last_used_at: string;
  device: string;
  ip: string;
  current: boolean;
}

/**
 * What a signed-in person does with their account: see and end sessions, move it to another
 * number, delete it, take a copy of their data. Auth owns codes and sessions and runs each of
 * these; referral does the user's side (internal calls) and decides races in its database.
 */
export function accountServiceFactory(deps: AccountServiceDeps) {
  const { otp, referral, tokens, sessions } = deps;

  function requireRecentSignIn(caller: Caller): void {
    const age = Math.floor(deps.now() / 1000) - caller.authTime;
    if (age > STEP_UP_SECONDS) {
      throw new AppError(
        'step_up_required',
        `This needs a sign-in with an SMS code within the last ${STEP_UP_SECONDS / 60} minutes; ` +
          'sign in again and retry with the new tokens.',
      );
    }
  }

  /** Runs `work` with the code claimed: spent when `work` succeeds, given back when it fails. */
  async function withCode<T>(phone: string, code: string | number, ip: string, work: () => Promise<T>): Promise<T> {
    const claim: OtpClaim = await otp.check(phone, code, ip);
    let result: T;
    try {
      result = await work();
    } catch (error) {
      await otp.release(claim).catch(() => undefined);
      throw error;
    }
    if (await otp.consume(claim)) otp.reached(claim);
    return result;
  }

  async function currentPhone(caller: Caller, requestId: string): Promise<string> {
    const user = await referral.user(caller.sub, requestId);
    if (user.status === 'blocked') throw new AppError('account_blocked', 'This account is blocked.');
    if (user.status !== 'active' || user.phone === null)
      throw new AppError('unauthorized', 'The user of this token no longer exists.');
    return user.phone;
  }

  /** What a move leaves to auth once referral committed it; each step may run twice harmlessly. */
  async function afterMove(sub: string, keep: string, from: string, to: string): Promise<void> {
    // The notice first: of these steps it is the one the owner of the old number needs most.
    await deps.sms.send({
      kind: 'phone_changed',
      to: from,
      newEnding: to.slice(-4),
      expiresAt: deps.now() + 24 * 3600 * 1000,
    });
    // The number that had the account may belong to someone else one day: it keeps nothing. Its
    // codes go before the sessions end: a sign-in with one that is still in flight (referral read
    // the account before the move) then cannot open a session after the others were ended.
    await deps.sms.forgetInviter(sub);
    await deps.forgetPhone(from);
    await tokens.endSessions(sub, { except: keep });
  }

  /**
   * A move to yet another number while an earlier one that committed (the account is on its number)
   * is unfinished: its steps run first, since the new move's record takes its place and the number
   * it left would never be told. They end every session but the one that made it; a request from
   * another one stops there.
   */
  async function finishEarlierMove(caller: Caller, current: string): Promise<void> {
    const earlier = await deps.unfinished.get(caller.sub, 'move');
    if (earlier?.to !== current) return;
    await afterMove(caller.sub, earlier.keep, earlier.from, earlier.to);
    await deps.unfinished.finish(caller.sub, 'move', earlier.id).catch(() => undefined);
    if (earlier.keep !== caller.sid) throw new AppError('unauthorized', 'This session has ended; sign in again.');
  }

  /** The same after a deletion. The sessions end last, so that a retry can still authenticate. */
  async function afterDeletion(sub: string, phone: string): Promise<void> {
    await deps.sms.forgetInviter(sub);
    await deps.forgetPhone(phone);
    await tokens.endSessions(sub, {});
  }

  return {
    async list(caller: Caller): Promise<{ sessions: SessionView[] }> {
      const iso = (ms: number) => new Date(ms).toISOString();
      return {
        sessions: (await sessions.list(caller.sub)).map((s) => ({
          id: s.id,
          created_at: iso(s.createdAt),
          last_used_at: iso(s.lastUsedAt),
          device: s.device,
          ip: s.ip,
          current: s.id === caller.sid,
        })),
      };
    },

    async endSession(caller: Caller, id: string): Promise<void> {
      if ((await tokens.endSessions(caller.sub, { only: id })) === 0)
        throw new AppError('session_not_found', 'You have no session with this id.');
    },

    async logoutAll(caller: Caller, includeCurrent: boolean): Promise<{ ended: number }> {
      return { ended: await tokens.endSessions(caller.sub, includeCurrent ? {} : { except: caller.sid }) };
    },

    /**
     * Step one of a phone change: a code to the new number, sent as send-code sends it. It does not
     * tell whether the number has an account (any signed-in user could probe numbers that way, past
     * the SMS guard); step two, with the number's code, does. send-code's own parsing refuses an
     * unusable number, so both paths refuse it alike.
     */
    async requestPhoneChange(caller: Caller, input: SendCodeInput, requestId: string): Promise<SendCodeResult> {
      requireRecentSignIn(caller);
      const current = await currentPhone(caller, requestId);
      const wanted = normalizePhone(input.phone, deps.config.phone);
      if (wanted.ok && wanted.e164 === current)
        throw new AppError('validation_failed', 'This is already the account’s number.');
      // Before the code goes out: the earlier move's steps forget the number it left, which may be
      // the very number this code is for (a move back).
      await finishEarlierMove(caller, current);
      return otp.sendCode(input);
    },

    /**
     * Step two: the code sent to the new number moves the account there. The previous number hears
     * of it by SMS, every other session ends, and auth forgets the previous number. These steps run
     * while the code is held, so that if the answer from referral or one of them is lost, the code
     * stays valid and a retry with it finishes them; the number the account left is kept meanwhile
     * (`unfinished`), since referral then answers as if the account had always been on the new one.
     */
    async confirmPhoneChange(
      caller: Caller,
      phoneInput: string,
      code: string | number,
      ip: string,
      requestId: string,
    ): Promise<{ user: Profile }> {
      requireRecentSignIn(caller);
      const phone = requirePhone(phoneInput, deps.config.phone);
      const current = await currentPhone(caller, requestId);
      // Already on the new number: an earlier try moved it, and this one finishes its steps.
      const resumed = current === phone ? await deps.unfinished.get(caller.sub, 'move') : undefined;
      if (current === phone && resumed?.to !== phone)
        throw new AppError('validation_failed', 'This is already the account’s number.');
      if (current !== phone) await finishEarlierMove(caller, current);
      const from = resumed?.from ?? current;
      let record = resumed?.id;
      const changed = await withCode(phone, code, ip, async () => {
        record ??= await deps.unfinished.begin(
          caller.sub,
          { kind: 'move', from, to: phone, keep: caller.sid },
          deps.now(),
        );
        const moved = await referral.changePhone(caller.sub, phone, requestId);
        // Another session's change may have landed in between: referral names the number it left.
        await afterMove(caller.sub, caller.sid, moved.old_phone !== phone ? moved.old_phone : from, phone);
        return moved;
      });
      // Everything ran: a record left behind only makes the sweep run the steps again (a second
      // notice at worst), so failing to remove it must not fail the move.
      if (record !== undefined) await deps.unfinished.finish(caller.sub, 'move', record).catch(() => undefined);
      return { user: changed.user };
    },

    /**
     * Deletion, confirmed with a code just sent to the account's number: referral erases the
     * person's data and leaves an anonymous entry in the invite graph; every session ends and auth
     * forgets the number. A retry after referral erased the account but its answer (or one of
     * auth's steps) was lost finishes those steps without a code: there is no account left to guard.
     * The sessions end last, so that such a retry can still authenticate.
     */
    async deleteAccount(caller: Caller, code: string | number, ip: string, requestId: string): Promise<void> {
      let phone: string;
      let record: string | undefined;
      try {
        const current = await currentPhone(caller, requestId);
        const erased = await withCode(current, code, ip, async () => {
          record = await deps.unfinished.begin(caller.sub, { kind: 'deletion', from: current }, deps.now());
          return referral.deleteUser(caller.sub, requestId);
        });
        phone = erased.old_phone;
      } catch (error) {
        const gone = error instanceof AppError && error.code === 'unauthorized';
        const unfinished = gone ? await deps.unfinished.get(caller.sub, 'deletion') : undefined;
        if (!unfinished) throw error;
        phone = unfinished.from;
        record = unfinished.id;
      }
      await afterDeletion(caller.sub, phone);
      if (record !== undefined) await deps.unfinished.finish(caller.sub, 'deletion', record).catch(() => undefined);
    },

    /**
     * Finishes moves and deletions that nobody came back for, e.g. an attacker's move whose answer
     * was lost and who has no reason to retry: the old number must still be told. What referral
     * holds now decides: the account on the new number (a move that committed) or gone (a deletion
     * that did); otherwise the change never happened and the record is dropped. Run by a timer in
     * every instance; each record is taken by one of them at a time.
     */
    async finishAbandoned(onError: (sub: string, error: unknown) => void): Promise<void> {
      for (const { sub, change } of await deps.unfinished.takeDue(
        deps.now(),
        abandonedAfterMs(deps.config.referralTimeoutMs),
      )) {
        try {
          const user = await referral.user(sub, randomUUID());
          if (change.kind === 'move' && user.phone === change.to) {
            await afterMove(sub, change.keep, change.from, change.to);
          }
          if (change.kind === 'deletion' && user.status === 'deleted') await afterDeletion(sub, change.from);
          await deps.unfinished.finish(sub, change.kind, change.id);
        } catch (error) {
          // Taken again once it is due again.
          onError(sub, error);
        }
      }
    },

    async exportData(caller: Caller, requestId: string) {
      const [account, own] = await Promise.all([referral.exportUser(caller.sub, requestId), this.list(caller)]);
      return { exported_at: new Date(deps.now()).toISOString(), ...account, sessions: own.sessions };
    },
  };
}

export type AccountService = ReturnType<typeof accountServiceFactory>;
