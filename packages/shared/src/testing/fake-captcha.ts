import { randomBytes } from 'node:crypto';
import type { CaptchaProviderName } from '../contracts/guard-config.js';
import { FakeProviderServer, type FakeAnswer, type FakeRequest } from './fake-sms/fake-provider.js';

/** What became of a token the fake issued, or why a request got no verdict on its token. */
type Outcome = 'passed' | 'used' | 'expired' | 'unknown' | 'no_token' | 'no_secret' | 'bad_secret' | 'bad_request';

interface ProviderApi {
  path: string;
  /** Body types the provider reads; any other body is as good as an empty one. */
  bodies: readonly ('form' | 'json')[];
  tokenField: string;
  tokenPrefix: string;
  answer(outcome: Outcome): FakeAnswer;
}

const FORM = 'application/x-www-form-urlencoded';

function json(body: unknown, status = 200): FakeAnswer {
  return { status, body: JSON.stringify(body), contentType: 'application/json' };
}

/** Turnstile and hCaptcha answer alike: `success`, then on success where and when it was solved. */
function siteverify(codes: Record<Exclude<Outcome, 'passed'>, string>, passed: Record<string, string>) {
  return (outcome: Outcome): FakeAnswer =>
    outcome === 'passed'
      ? json({
          success: true,
          challenge_ts: new Date().toISOString(),
          hostname: 'app.example.test',
          'error-codes': [],
          ...passed,
        })
      : json({ success: false, 'error-codes': [codes[outcome]] });
}

const APIS: Record<CaptchaProviderName, ProviderApi> = {
  // https://developers.cloudflare.com/turnstile/get-started/server-side-validation/ (form or JSON;
  // an expired and a redeemed token both answer timeout-or-duplicate).
  turnstile: {
    path: '/turnstile/v0/siteverify',
    bodies: ['form', 'json'],
    tokenField: 'response',
    tokenPrefix: '0.',
    answer: siteverify(
      {
        used: 'timeout-or-duplicate',
        expired: 'timeout-or-duplicate',
        unknown: 'invalid-input-response',
        no_token: 'missing-input-response',
        no_secret: 'missing-input-secret',
        bad_secret: 'invalid-input-secret',
        bad_request: 'bad-request',
      },
      { action: '', cdata: '' },
    ),
  },
  // https://docs.hcaptcha.com/#verify-the-user-response-server-side (form only).
  hcaptcha: {
    path: '/siteverify',
    bodies: ['form'],
    tokenField: 'response',
    tokenPrefix: 'P1_',
    answer: siteverify(
      {
        used: 'already-seen-response',
        expired: 'expired-input-response',
        unknown: 'invalid-input-response',
        no_token: 'missing-input-response',
        no_secret: 'missing-input-secret',
        bad_secret: 'invalid-input-secret',
        bad_request: 'bad-request',
      },
      {},
    ),
  },
  // https://yandex.cloud/en/docs/smartcaptcha/operations/validate-captcha: one message for a forged,
  // expired or reused token; secret problems say "Authentication failed." (with HTTP 200: the docs
  // give no other status, and it is the answer a client must not mistake for a bad token).
  smartcaptcha: {
    path: '/validate',
    bodies: ['form'],
    tokenField: 'token',
    tokenPrefix: 'dD0',
    answer: (outcome) => {
      if (outcome === 'passed') return json({ status: 'ok', message: '', host: 'app.example.test' });
      if (outcome === 'no_secret' || outcome === 'bad_request') {
        return json({ status: 'failed', message: 'Authentication failed. Secret has not provided.' });
      }
      if (outcome === 'bad_secret')
        return json({ status: 'failed', message: 'Authentication failed. Invalid secret.' });
      return json({ status: 'failed', message: 'Invalid or expired Token.' });
    },
  },
};

/** The fields of a body the provider can read; undefined when it cannot read this one. */
function readFields(request: FakeRequest, bodies: ProviderApi['bodies']): Record<string, string> | undefined {
  const type = String(request.headers['content-type'] ?? '')
    .split(';')[0]
    ?.trim();
  const text = request.body.toString('utf8');
  if (type === FORM && bodies.includes('form')) return Object.fromEntries(new URLSearchParams(text));
  if (type === 'application/json' && bodies.includes('json')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null) return undefined;
      return Object.fromEntries(
        Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
      );
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * A bot-challenge provider's verification API on 127.0.0.1. It checks what the real one checks
 * (method, path, body type, the secret, the token field) and answers in its documented shapes;
 * tokens it issues work once, and can be expired. `down` plays an outage: 500s, or no answer.
 */
export class FakeCaptchaServer {
  readonly secret: string;
  /** Every request that reached the API's path, with the fields the provider would have read. */
  readonly calls: Array<{ path: string; fields: Record<string, string> }> = [];
  private readonly api: ProviderApi;
  private readonly server: FakeProviderServer;
  private readonly tokens = new Map<string, { state: 'fresh' | 'used' | 'expired'; idempotencyKey?: string }>();

  constructor(
    readonly provider: CaptchaProviderName,
    options: { secret?: string } = {},
  ) {
    this.api = APIS[provider];
    this.secret = options.secret ?? `fake-${provider}-secret-${randomBytes(8).toString('hex')}`;
    this.server = new FakeProviderServer((request) => this.verify(request));
  }

  /** The origin, e.g. http://127.0.0.1:PORT, to use as CAPTCHA_BASE_URL. */
  get url(): string {
    return this.server.url;
  }

  /** Listens (again on the same port after `stop`). */
  async start(): Promise<void> {
    await this.server.start();
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  /** A token as the widget gives a person who passed the challenge: good for one verification. */
  issue(): string {
    const token = `${this.api.tokenPrefix}${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { state: 'fresh' });
    return token;
  }

  /** As if its five minutes had passed. */
  expire(token: string): void {
    this.tokens.set(token, { state: 'expired' });
  }

  /** An outage: every call answers 500, or none is answered; false ends it. */
  down(mode: 'error500' | 'hang' | false): void {
    this.server.behaviour = mode === 'error500' ? 'http500' : mode === 'hang' ? 'hang' : 'ok';
  }

  private verify(request: FakeRequest): FakeAnswer {
    if (request.path !== this.api.path) return { status: 404, body: 'Not Found', contentType: 'text/plain' };
    if (request.method !== 'POST') return { status: 405, body: 'Method Not Allowed', contentType: 'text/plain' };
    const fields = readFields(request, this.api.bodies);
    this.calls.push({ path: request.path, fields: fields ?? {} });
    if (!fields) return this.api.answer('bad_request');
    const secret = fields['secret'];
    if (!secret) return this.api.answer('no_secret');
    if (secret !== this.secret) return this.api.answer('bad_secret');
    const token = fields[this.api.tokenField];
    if (!token) return this.api.answer('no_token');
    const record = this.tokens.get(token);
    if (!record) return this.api.answer('unknown');
    const key = this.provider === 'turnstile' ? fields['idempotency_key'] : undefined;
    if (record.state === 'fresh') {
      this.tokens.set(token, key ? { state: 'used', idempotencyKey: key } : { state: 'used' });
      return this.api.answer('passed');
    }
    // Turnstile lets a retry with the first verification's idempotency_key see its verdict again.
    if (record.state === 'used' && key !== undefined && key === record.idempotencyKey) return this.api.answer('passed');
    return this.api.answer(record.state);
  }
}
