import { AppError, parseInviteCode, requirePhone, type Config, type Profile, type Tokens } from '@refstack/shared';
import type { OtpService } from './otp/otp-service.js';
import type { ReferralClient } from './referral-client.js';
import type { TokenService } from './tokens/token-service.js';

export interface LoginServiceDeps {
  otp: OtpService;
  referral: ReferralClient;
  tokens: TokenService;
  config: Pick<Config, 'phone'>;
}

export interface VerifyInput {
  phone: string;
  code: string | number;
  invite_code?: string | null;
}

/**
 * Verify = check the code (counted), sign in at referral (creates the user, applies the invite),
 * and only then spend the code and open a session. A refused invite or an unreachable referral
 * service leaves the code valid.
 */
export function loginServiceFactory({ otp, referral, tokens, config }: LoginServiceDeps) {
  return {
    async verify(input: VerifyInput, requestId: string): Promise<{ user: Profile; tokens: Tokens; created: boolean }> {
      const phone = requirePhone(input.phone, config.phone);
      let inviteCode: string | undefined;
      if (input.invite_code !== undefined && input.invite_code !== null && input.invite_code.trim() !== '') {
        const parsed = parseInviteCode(input.invite_code);
        if (parsed === null) {
          const message = 'must be 6 letters or digits';
          throw new AppError('validation_failed', `invite_code ${message}`, { errors: [{ field: 'invite_code', message }] });
        }
        inviteCode = parsed;
      }
      const codeHash = await otp.check(phone, input.code);
      const signedIn = await referral.signIn({ phone, inviteCode }, requestId);
      if (!(await otp.consume(phone, codeHash))) {
        throw new AppError('otp_expired', 'This code has just been used.');
      }
      const issued = await tokens.issue({ sub: signedIn.user.id, phone: signedIn.user.phone, roles: signedIn.roles });
      return { user: signedIn.user, tokens: issued, created: signedIn.created };
    },
  };
}

export type LoginService = ReturnType<typeof loginServiceFactory>;
