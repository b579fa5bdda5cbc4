import type { CaptchaConfig, CaptchaProviderName } from '@refstack/shared/contracts';

export type CaptchaVerdict =
  | { result: 'passed' }
  /** The client's token is wrong, expired or already used: it must solve the challenge again. */
  | { result: 'refused'; reason: 'invalid' | 'expired'; detail: string }
  /** No verdict: the provider timed out, failed, or refused our own credentials. */
  | { result: 'unavailable'; detail: string };

export interface CaptchaVerifier {
  readonly provider: CaptchaProviderName;
  verify(token: string, ip: string): Promise<CaptchaVerdict>;
}

interface Exchange {
  path: string;
  /**
   * Turnstile documents 2048 characters. hCaptcha and SmartCaptcha document none, and hCaptcha
   * tokens over 4000 characters are seen in the wild, so theirs only stops absurd bodies.
   */
  maxTokenLength: number;
  fields(secret: string, token: string, ip: string): Record<string, string>;
  /** The verdict on a 200 answer whose body parsed as JSON. */
  judge(body: unknown): CaptchaVerdict;
}

/** Codes for a token that was good once: its time ran out, or it was redeemed already. */
const SPENT = new Set([
  'timeout-or-duplicate',
  'expired-input-response',
  'already-seen-response',
  'invalid-or-already-seen-response',
]);
/**
 * Codes about our side: our secret or request, or the provider's own failure. Only codes a client
 * cannot cause by what it sends belong here, as CAPTCHA_FAIL_OPEN lets "unavailable" through; the
 * public test tokens (hCaptcha's not-using-dummy-*) therefore stay the client's fault, and so does
 * hCaptcha's `sitekey-secret-mismatch`, which a token solved on someone else's site key brings.
 */
const OURS = new Set(['missing-input-secret', 'invalid-input-secret', 'bad-request', 'internal-error']);

/**
 * Turnstile and hCaptcha: a form post of `secret`, `response`, `remoteip`, answered by
 * `{success, "error-codes"}` (https://developers.cloudflare.com/turnstile/get-started/server-side-validation/,
 * https://docs.hcaptcha.com/#verify-the-user-response-server-side).
 */
function siteverify(path: string, maxTokenLength: number): Exchange {
  return {
    path,
    maxTokenLength,
    fields: (secret, response, remoteip) => ({ secret, response, ...(remoteip ? { remoteip } : {}) }),
    judge(body) {
      const answer = body as { success?: unknown; 'error-codes'?: unknown } | null;
      if (typeof answer?.success !== 'boolean') return { result: 'unavailable', detail: 'answer without success' };
      if (answer.success) return { result: 'passed' };
      const listed = answer['error-codes'];
      const codes = Array.isArray(listed) ? listed.map(String) : [];
      const detail = codes.join(', ') || 'no error code';
      if (codes.some((code) => OURS.has(code))) return { result: 'unavailable', detail };
      return { result: 'refused', reason: codes.some((code) => SPENT.has(code)) ? 'expired' : 'invalid', detail };
    },
  };
}

/**
 * Yandex SmartCaptcha: a form post of `secret`, `token`, `ip`, answered by `{status, message, host}`
 * (https://yandex.cloud/en/docs/smartcaptcha/operations/validate-captcha). One message covers a
 * forged, an expired and a reused token and the docs say not to branch on it, so every refusal is
 * 'invalid'; only its "Authentication failed." (our secret) is read, as it must not blame the client.
 */
const smartcaptcha: Exchange = {
  path: '/validate',
  maxTokenLength: 32_768,
  fields: (secret, token, ip) => ({ secret, token, ...(ip ? { ip } : {}) }),
  judge(body) {
    const answer = body as { status?: unknown; message?: unknown } | null;
    const message = typeof answer?.message === 'string' ? answer.message : '';
    if (answer?.status === 'ok') return { result: 'passed' };
    if (answer?.status !== 'failed') return { result: 'unavailable', detail: 'answer without status' };
    if (message.startsWith('Authentication failed')) return { result: 'unavailable', detail: message };
    return { result: 'refused', reason: 'invalid', detail: message || 'failed' };
  },
};

const EXCHANGES: Record<CaptchaProviderName, Exchange> = {
  turnstile: siteverify('/turnstile/v0/siteverify', 2048),
  hcaptcha: siteverify('/siteverify', 32_768),
  smartcaptcha,
};

/**
 * Checks a challenge token with its provider, server to server, within CAPTCHA_TIMEOUT_MS. The
 * secret and the token go only to the provider: a verdict's detail holds the provider's codes.
 */
export function createCaptchaVerifier(config: CaptchaConfig, options: { fetch?: typeof fetch } = {}): CaptchaVerifier {
  const { provider, secret } = config;
  if (!provider || !secret) throw new Error('a captcha verifier needs CAPTCHA_PROVIDER and CAPTCHA_SECRET');
  const exchange = EXCHANGES[provider];
  const send = options.fetch ?? fetch;
  return {
    provider,
    async verify(token, ip) {
      if (token.length === 0 || token.length > exchange.maxTokenLength) {
        return { result: 'refused', reason: 'invalid', detail: `token of ${token.length} characters` };
      }
      let status: number;
      let text: string;
      try {
        // One signal for the request and the body: a provider that stalls mid-answer is bounded too.
        const response = await send(`${config.baseUrl}${exchange.path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: new URLSearchParams(exchange.fields(secret, token, ip)).toString(),
          signal: AbortSignal.timeout(config.timeoutMs),
        });
        status = response.status;
        text = await response.text();
      } catch (error) {
        const timedOut = error instanceof Error && error.name === 'TimeoutError';
        return { result: 'unavailable', detail: timedOut ? `no answer within ${config.timeoutMs} ms` : 'unreachable' };
      }
      // SmartCaptcha's docs say to take any status but 200 as "could not check"; the others agree.
      if (status !== 200) return { result: 'unavailable', detail: `HTTP ${status}` };
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return { result: 'unavailable', detail: 'answer not JSON' };
      }
      return exchange.judge(body);
    },
  };
}
