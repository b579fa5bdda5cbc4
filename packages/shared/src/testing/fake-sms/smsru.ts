import { createHash } from 'node:crypto';
import { FakeProviderServer, requestParams, type FakeAnswer, type FakeRequest } from './fake-provider.js';

const KNOWN_PARAMS = new Set([
  'api_id',
  'to',
  'msg',
  'from',
  'json',
  'time',
  'ttl',
  'daytime',
  'translit',
  'test',
  'partner_id',
  'ip',
]);
// Request-level codes answer for the whole request; the others sit in the number's entry.
const REQUEST_LEVEL = new Set([200, 201, 203, 204, 205, 206, 208, 210, 211, 212, 213, 220, 300, 301, 302, 500]);

const json = (body: unknown): FakeAnswer => ({ status: 200, body: JSON.stringify(body) });
const error = (code: number, text: string): FakeAnswer =>
  json({ status: 'ERROR', status_code: code, status_text: text });

/**
 * SMS.ru's `/sms/send` as https://sms.ru/api/send documents it: `api_id`, `to` as international
 * digits without '+', a UTF-8 `msg`, and with `json=1` the JSON answer with one entry per number.
 */
export class FakeSmsRu extends FakeProviderServer {
  private refusal: number | undefined;

  constructor(private readonly apiId: string) {
    super((request) => this.answer(request));
  }

  /** The following requests are answered with this SMS.ru code (undefined: as the real one would). */
  refuse(code: number | undefined): void {
    this.refusal = code;
  }

  private answer(request: FakeRequest): FakeAnswer {
    if (request.path !== '/sms/send') return { status: 404, body: 'not found', contentType: 'text/html' };
    if (request.method !== 'POST' && request.method !== 'GET') return error(211, 'Метод не найден');
    const params = requestParams(request);
    for (const name of params.keys()) if (!KNOWN_PARAMS.has(name)) this.violation(`unknown parameter ${name}`);
    if (params.get('json') !== '1') this.violation('json=1 missing: the answer would be plain text');
    if (params.get('api_id') !== this.apiId) return error(200, 'Неправильный api_id');
    const to = params.get('to') ?? '';
    const msg = params.get('msg') ?? '';
    if (!msg) return error(203, 'Нет текста сообщения');
    if (this.refusal !== undefined && REQUEST_LEVEL.has(this.refusal)) return error(this.refusal, 'refused');
    // International digits without '+': a country code (never 0) and the national number, 15 at
    // most (E.164), as few as 7 (Niue's +683 and 4 digits); not only Russia's 11.
    if (!/^[1-9]\d{6,14}$/.test(to)) {
      this.violation(`number not in international digits without '+': ${to}`);
      return json({
        status: 'OK',
        status_code: 100,
        sms: { [to]: { status: 'ERROR', status_code: 202, status_text: 'Неправильно указан номер' } },
      });
    }
    if (this.refusal !== undefined) {
      return json({
        status: 'OK',
        status_code: 100,
        sms: { [to]: { status: 'ERROR', status_code: this.refusal, status_text: 'refused' } },
        balance: 100.5,
      });
    }
    const smsId = this.nextId((n) => `000000-${String(10_000_000 + n)}`);
    this.accept({ providerMessageId: smsId, to: `+${to}`, text: msg, params: Object.fromEntries(params) });
    return json({
      status: 'OK',
      status_code: 100,
      sms: { [to]: { status: 'OK', status_code: 100, sms_id: smsId } },
      balance: 100.5,
    });
  }

  /**
   * A status callback as SMS.ru posts it: `data[0]` = `sms_status\n<id>\n<code>\n<unix time>` and
   * `hash` = SHA-256 of the api_id and the data. Another `apiId` signs it wrongly.
   */
  receipt(
    smsId: string,
    statusCode: number,
    options: { apiId?: string; at?: number } = {},
  ): {
    headers: Record<string, string>;
    body: string;
  } {
    const data = [`sms_status\n${smsId}\n${statusCode}\n${Math.floor((options.at ?? Date.now()) / 1000)}`];
    const hash = createHash('sha256')
      .update((options.apiId ?? this.apiId) + data.join(''))
      .digest('hex');
    const body = new URLSearchParams();
    data.forEach((entry, i) => body.append(`data[${i}]`, entry));
    body.append('hash', hash);
    return { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() };
  }
}

export async function startFakeSmsRu(options: { apiId: string }): Promise<FakeSmsRu> {
  return new FakeSmsRu(options.apiId).start();
}
