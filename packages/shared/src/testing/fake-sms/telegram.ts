import { createHash, createHmac, randomBytes } from 'node:crypto';
import { FakeProviderServer, type FakeAnswer, type FakeRequest } from './fake-provider.js';

const KNOWN_FIELDS = new Set([
  'phone_number',
  'request_id',
  'sender_username',
  'code',
  'code_length',
  'callback_url',
  'payload',
  'ttl',
]);

// Telegram documents no HTTP status for errors; its clients read `ok` from any answer, so 200.
const fail = (error: string): FakeAnswer => ({ status: 200, body: JSON.stringify({ ok: false, error }) });

/**
 * Telegram Gateway's `sendVerificationMessage` as https://core.telegram.org/gateway/api documents
 * it: `Authorization: Bearer <token>`, `phone_number` in E.164, our `code` of 4 to 8 digits, `ttl`
 * of 30 to 3600 s, answers `{ok: true, result: RequestStatus}` or `{ok: false, error}`. The message
 * a phone gets holds the code only.
 */
export class FakeTelegramGateway extends FakeProviderServer {
  private refusal: string | undefined;

  constructor(private readonly token: string) {
    super((request) => this.answer(request));
  }

  /** The following requests answer this error (undefined: as the real one would). */
  refuse(error: string | undefined): void {
    this.refusal = error;
  }

  private answer(request: FakeRequest): FakeAnswer {
    if (request.path.toLowerCase() !== '/sendverificationmessage') return fail('UNKNOWN_METHOD');
    if (request.headers.authorization === undefined) return fail('ACCESS_TOKEN_REQUIRED');
    if (request.headers.authorization !== `Bearer ${this.token}`) return fail('ACCESS_TOKEN_INVALID');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(request.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      this.violation('body is not JSON');
      return fail('PHONE_NUMBER_INVALID');
    }
    for (const name of Object.keys(body)) if (!KNOWN_FIELDS.has(name)) this.violation(`unknown field ${name}`);
    const phone = body['phone_number'];
    if (typeof phone !== 'string' || !/^\+[1-9]\d{6,14}$/.test(phone)) {
      this.violation(`phone_number is not E.164: ${String(phone)}`);
      return fail('PHONE_NUMBER_INVALID');
    }
    const code = body['code'];
    if (typeof code !== 'string' || !/^\d{4,8}$/.test(code)) {
      this.violation('code is not 4 to 8 digits');
      return fail('CODE_INVALID');
    }
    const ttl = body['ttl'];
    if (ttl !== undefined && !(Number.isInteger(ttl) && (ttl as number) >= 30 && (ttl as number) <= 3600)) {
      this.violation(`ttl out of range: ${String(ttl)}`);
      return fail('TTL_INVALID');
    }
    const callback = body['callback_url'];
    if (callback !== undefined && (typeof callback !== 'string' || callback.length > 256))
      return fail('CALLBACK_URL_INVALID');
    const payload = body['payload'];
    if (payload !== undefined && (typeof payload !== 'string' || Buffer.byteLength(payload) > 128)) {
      return fail('PAYLOAD_INVALID');
    }
    if (this.refusal !== undefined) return fail(this.refusal);
    const requestId = randomBytes(8).toString('hex');
    this.accept({
      providerMessageId: requestId,
      to: phone,
      text: code,
      params: Object.fromEntries(Object.entries(body).map(([k, v]) => [k, String(v)])),
      ...(typeof callback === 'string' ? { callbackUrl: callback } : {}),
    });
    return {
      status: 200,
      body: JSON.stringify({
        ok: true,
        result: {
          request_id: requestId,
          phone_number: phone,
          request_cost: 0.01,
          remaining_balance: 99.99,
          delivery_status: { status: 'sent', updated_at: Math.floor(Date.now() / 1000) },
          ...(payload !== undefined ? { payload } : {}),
        },
      }),
    };
  }

  /**
   * A delivery report as Telegram posts it: the RequestStatus JSON with `X-Request-Timestamp` and
   * `X-Request-Signature` (hex HMAC-SHA256 of `<timestamp>\n<body>` keyed with SHA-256 of the token).
   */
  receipt(
    requestId: string,
    status: string,
    /** `body`: signed as it is instead of the report, for bodies Telegram would never send. */
    options: { token?: string; timestamp?: number; body?: string } = {},
  ): { headers: Record<string, string>; body: string } {
    const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
    const body =
      options.body ??
      JSON.stringify({
        request_id: requestId,
        phone_number: '+79123456789',
        request_cost: 0.01,
        delivery_status: { status, updated_at: Number(timestamp) },
      });
    const key = createHash('sha256')
      .update(options.token ?? this.token)
      .digest();
    const signature = createHmac('sha256', key).update(`${timestamp}\n${body}`).digest('hex');
    return {
      headers: {
        'content-type': 'application/json',
        'x-request-timestamp': timestamp,
        'x-request-signature': signature,
      },
      body,
    };
  }
}

export async function startFakeTelegramGateway(options: { token: string }): Promise<FakeTelegramGateway> {
  return new FakeTelegramGateway(options.token).start();
}
