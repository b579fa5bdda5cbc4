import { createHmac, randomBytes } from 'node:crypto';
import { FakeProviderServer, requestParams, type FakeAnswer, type FakeRequest } from './fake-provider.js';

const KNOWN_PARAMS = new Set([
  'To',
  'From',
  'MessagingServiceSid',
  'Body',
  'MediaUrl',
  'ContentSid',
  'ContentVariables',
  'StatusCallback',
  'ApplicationSid',
  'MaxPrice',
  'ProvideFeedback',
  'Attempt',
  'ValidityPeriod',
  'ForceDelivery',
  'ContentRetention',
  'AddressRetention',
  'SmartEncoded',
  'PersistentAction',
  'TrafficType',
  'ShortenUrls',
  'ScheduleType',
  'SendAt',
  'SendAsMms',
  'RiskCheck',
]);
const HTTP_STATUS: Readonly<Record<number, number>> = { 20003: 401, 20429: 429, 20503: 503, 20500: 500 };

const problem = (status: number, code: number, message: string): FakeAnswer => ({
  status,
  body: JSON.stringify({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }),
});

/** Twilio's signature, computed here independently of the client (see the documented example in its test). */
function sign(authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params)
    .sort()
    .reduce((text, name) => text + name + params[name], url);
  return createHmac('sha1', authToken).update(data).digest('base64');
}

/**
 * Twilio's create-Message endpoint (`POST /2010-04-01/Accounts/{sid}/Messages.json`) as its docs
 * describe it: Basic auth with the account SID and auth token, form-encoded parameters, `To` in
 * E.164, exactly one of `From` and `MessagingServiceSid`, 201 with the Message, errors as
 * `{code, message, more_info, status}`.
 */
export class FakeTwilio extends FakeProviderServer {
  private refusal: number | undefined;

  constructor(
    private readonly accountSid: string,
    private readonly authToken: string,
  ) {
    super((request) => this.answer(request));
  }

  /** The following requests fail with this Twilio error code (undefined: as the real one would). */
  refuse(code: number | undefined): void {
    this.refusal = code;
  }

  private answer(request: FakeRequest): FakeAnswer {
    if (request.method !== 'POST' || request.path !== `/2010-04-01/Accounts/${this.accountSid}/Messages.json`) {
      return problem(404, 20404, 'The requested resource was not found');
    }
    const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString('base64')}`;
    if (request.headers.authorization !== expected) return problem(401, 20003, 'Authenticate');
    if (!String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
      this.violation('body is not form-encoded');
    }
    const params = requestParams(request);
    for (const name of params.keys()) if (!KNOWN_PARAMS.has(name)) this.violation(`unknown parameter ${name}`);
    const to = params.get('To') ?? '';
    if (!/^\+[1-9]\d{6,14}$/.test(to)) {
      this.violation(`To is not E.164: ${to}`);
      return problem(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    }
    if (params.has('From') === params.has('MessagingServiceSid')) {
      this.violation('exactly one of From and MessagingServiceSid is needed');
      return problem(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message");
    }
    const body = params.get('Body') ?? '';
    if (!body) return problem(400, 21602, 'Message body is required.');
    const validity = params.get('ValidityPeriod');
    if (validity !== null && !(/^\d+$/.test(validity) && Number(validity) >= 1 && Number(validity) <= 36_000)) {
      this.violation(`ValidityPeriod out of range: ${validity}`);
    }
    if (this.refusal !== undefined) return problem(HTTP_STATUS[this.refusal] ?? 400, this.refusal, 'refused');
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const callback = params.get('StatusCallback');
    this.accept({
      providerMessageId: sid,
      to,
      text: body,
      params: Object.fromEntries(params),
      ...(callback ? { callbackUrl: callback } : {}),
    });
    return {
      status: 201,
      body: JSON.stringify({
        account_sid: this.accountSid,
        api_version: '2010-04-01',
        body,
        date_created: new Date().toUTCString(),
        direction: 'outbound-api',
        error_code: null,
        error_message: null,
        from: params.get('From'),
        messaging_service_sid: params.get('MessagingServiceSid'),
        num_segments: '1',
        sid,
        status: params.has('MessagingServiceSid') && !params.has('From') ? 'accepted' : 'queued',
        to,
        uri: `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}.json`,
      }),
    };
  }

  /** A status callback as Twilio posts it to `url`, signed with the auth token (or `authToken`). */
  receipt(
    messageSid: string,
    status: string,
    options: { url: string; errorCode?: string; authToken?: string },
  ): { headers: Record<string, string>; body: string } {
    const params: Record<string, string> = {
      AccountSid: this.accountSid,
      From: '+15005550006',
      MessageSid: messageSid,
      MessageStatus: status,
      SmsSid: messageSid,
      SmsStatus: status,
      To: '+79123456789',
      ApiVersion: '2010-04-01',
      ...(options.errorCode ? { ErrorCode: options.errorCode } : {}),
    };
    return {
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': sign(options.authToken ?? this.authToken, options.url, params),
      },
      body: new URLSearchParams(params).toString(),
    };
  }
}

export async function startFakeTwilio(options: { accountSid: string; authToken: string }): Promise<FakeTwilio> {
  return new FakeTwilio(options.accountSid, options.authToken).start();
}
