import { FakeProviderServer, requestParams, type FakeAnswer, type FakeRequest } from './fake-provider.js';

const KNOWN_PARAMS = new Set([
  'login',
  'psw',
  'apikey',
  'phones',
  'mes',
  'id',
  'sender',
  'translit',
  'tinyurl',
  'time',
  'tz',
  'period',
  'freq',
  'flash',
  'bin',
  'push',
  'hlr',
  'ping',
  'mms',
  'mail',
  'call',
  'viber',
  'fileurl',
  'subj',
  'charset',
  'cost',
  'fmt',
  'list',
  'valid',
  'maxsms',
  'imgcode',
  'userip',
  'err',
  'op',
  'pp',
]);
// For these SMSC adds the message id to the error answer.
const WITH_ID = new Set([3, 6, 7, 8]);

const json = (body: unknown): FakeAnswer => ({ status: 200, body: JSON.stringify(body) });

/**
 * SMSC.ru's `/sys/send.php` as https://smsc.ru/api/http/ documents it: `login` and `psw`, `phones`,
 * `mes`, and with `fmt=3` JSON answers: `{id, cnt}`, or `{error, error_code}` (with `id` for errors
 * 3, 6, 7 and 8), always with HTTP 200.
 */
export class FakeSmsc extends FakeProviderServer {
  private refusal: number | undefined;

  constructor(
    private readonly login: string,
    private readonly password: string,
  ) {
    super((request) => this.answer(request));
  }

  /** The following requests are answered with this SMSC error code (undefined: as the real one would). */
  refuse(code: number | undefined): void {
    this.refusal = code;
  }

  private answer(request: FakeRequest): FakeAnswer {
    if (request.path !== '/sys/send.php') return { status: 404, body: 'not found', contentType: 'text/html' };
    const params = requestParams(request);
    for (const name of params.keys()) if (!KNOWN_PARAMS.has(name)) this.violation(`unknown parameter ${name}`);
    if (params.get('fmt') !== '3') this.violation('fmt=3 missing: the answer would not be JSON');
    if (params.get('charset') !== 'utf-8')
      this.violation('charset=utf-8 missing: the text would be read as windows-1251');
    const id = params.get('id') ?? String(Math.floor(Math.random() * 1e6));
    const fail = (code: number, text: string) =>
      json({ error: text, error_code: code, ...(WITH_ID.has(code) ? { id: Number(id) || id } : {}) });
    if (params.get('login') !== this.login || params.get('psw') !== this.password) return fail(2, 'authorise error');
    const phones = params.get('phones') ?? '';
    const mes = params.get('mes') ?? '';
    if (!mes) return fail(1, 'parameters error');
    if (!/^\+?[1-9]\d{6,14}$/.test(phones)) {
      this.violation(`number not in international format: ${phones}`);
      return fail(7, 'invalid number');
    }
    if (this.refusal !== undefined) return fail(this.refusal, 'refused');
    // SMSC takes as `id` up to 40 characters of [A-Za-z0-9.-_]; a client sending another would
    // not find its message under that id, so it is a violation, not something to smooth over.
    const valid = /^[A-Za-z0-9._-]{1,40}$/.test(id);
    if (!valid) this.violation(`id not up to 40 characters of [A-Za-z0-9.-_]: ${id}`);
    const providerMessageId = valid ? id : this.nextId(String);
    const to = phones.startsWith('+') ? phones : `+${phones}`;
    this.accept({ providerMessageId, to, text: mes, params: Object.fromEntries(params) });
    return json({ id: Number(providerMessageId) || providerMessageId, cnt: 1 });
  }
}

export async function startFakeSmsc(options: { login: string; password: string }): Promise<FakeSmsc> {
  return new FakeSmsc(options.login, options.password).start();
}
