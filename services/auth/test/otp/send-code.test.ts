import t from 'tap';
import { AppError } from '@refstack/shared/contracts';
import { buildAuthTestApp, PHONE, sendCode, signIn, verify } from '../auth-test-app.js';

t.test('normalises any notation and answers with E.164, never the code', async (t) => {
  const { app, outbox } = await buildAuthTestApp(t);
  const res = await sendCode(app, '8 (912) 345-67-89');
  t.equal(res.statusCode, 200);
  t.same(res.json(), { message: 'Code sent', phone: PHONE, expires_in: 300, resend_in: 60 });
  t.equal(outbox.jobs.length, 1, 'one SMS job');
  const job = outbox.jobs[0];
  t.match(job, { kind: 'otp', to: PHONE, code: /^\d{6}$/, ttlSeconds: 300, locale: 'ru' });
  t.notOk('text' in (job ?? {}), 'the worker writes the text');
  const code = outbox.lastCodeFor(PHONE);
  t.notMatch(res.body, code);
});

t.test('the message language: Accept-Language, else the number country, else SMS_DEFAULT_LOCALE', async (t) => {
  const { app, outbox } = await buildAuthTestApp(t, { ALLOWED_COUNTRIES: 'RU,GB', SMS_DEFAULT_LOCALE: 'en' });
  await sendCode(app, PHONE);
  await sendCode(app, '+447400123456');
  await sendCode(app, '+79001112233', { 'accept-language': 'en-US,en;q=0.9,ru;q=0.5' });
  await sendCode(app, '+447400123457', { 'accept-language': 'ru' });
  await sendCode(app, '+447400123458', { 'accept-language': 'de-DE, fr;q=0.8' });
  t.same(
    outbox.jobs.map((j) => [j.to, j.locale]),
    [
      [PHONE, 'ru'],
      ['+447400123456', 'en'],
      ['+79001112233', 'en'],
      ['+447400123457', 'ru'],
      ['+447400123458', 'en'],
    ],
  );
  const seed = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/send_code/',
    payload: { phone: '+447400123459' },
    headers: { 'accept-language': 'ru-RU' },
  });
  t.equal(seed.statusCode, 200);
  t.equal(outbox.jobs.at(-1)?.locale, 'ru', "the seeds' paths honour it too");
});

t.test('refuses bad phones with invalid_phone, and bad bodies with validation_failed', async (t) => {
  const { app, outbox } = await buildAuthTestApp(t);
  for (const phone of ['abc', '+44 7400 123456', '123', '+7 912 345 67 89 ext 1']) {
    const res = await sendCode(app, phone);
    t.equal(res.statusCode, 400, phone);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
    t.match(res.json(), { code: 'invalid_phone', errors: [{ field: 'phone' }] }, phone);
  }
  for (const payload of [{}, { phone: 79123456789 }, { phone: null }, { phone: 'x'.repeat(65) }]) {
    const res = await app.inject({ method: 'POST', url: '/api/v1/auth/send-code', payload });
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 40));
    t.equal(res.json().code, 'validation_failed');
  }
  t.equal(outbox.jobs.length, 0, 'nothing was sent');
});

t.test('malformed, oversize and non-JSON bodies are problems, not crashes', async (t) => {
  const { app } = await buildAuthTestApp(t);
  const malformed = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/send-code',
    headers: { 'content-type': 'application/json' },
    payload: '{"phone": "+7912',
  });
  t.equal(malformed.statusCode, 400);
  t.equal(malformed.json().code, 'malformed_json');
  const large = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/send-code',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ phone: PHONE, pad: 'x'.repeat(65 * 1024) }),
  });
  t.equal(large.statusCode, 413);
  t.equal(large.json().code, 'payload_too_large');
  const form = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/send-code',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'phone=%2B79123456789',
  });
  t.equal(form.statusCode, 415);
  t.equal(form.json().code, 'unsupported_media_type');
  const text = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/send-code',
    headers: { 'content-type': 'text/plain' },
    payload: '{"phone": "+79123456789"}',
  });
  t.equal(text.statusCode, 415, 'text/plain is not JSON either, whatever it holds');
  t.equal(text.json().code, 'unsupported_media_type');
  for (const res of [malformed, large, form, text]) t.match(res.headers['content-type'], /^application\/problem\+json/);
});

t.test('no enumeration: a known and an unknown phone get the same answer', async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_RESEND_SECONDS: '0' });
  await signIn(ctx, PHONE);
  t.equal(ctx.referral.users.size, 1);
  const known = await sendCode(ctx.app, PHONE);
  const unknown = await sendCode(ctx.app, '+79001234567');
  t.equal(known.statusCode, unknown.statusCode);
  t.same({ ...known.json(), phone: 'x' }, { ...unknown.json(), phone: 'x' });
  t.same(Object.keys(known.headers).sort(), Object.keys(unknown.headers).sort());
  t.equal(ctx.referral.users.size, 1, 'send-code created no user');
});

t.test('resend cooldown: resend_too_soon with Retry-After until it passes', async (t) => {
  const { app, clock, outbox } = await buildAuthTestApp(t);
  t.equal((await sendCode(app)).statusCode, 200);
  clock.advance(20);
  const early = await sendCode(app);
  t.equal(early.statusCode, 429);
  t.equal(early.json().code, 'resend_too_soon');
  t.equal(early.headers['retry-after'], '40');
  t.equal(early.json().retry_after, 40);
  clock.advance(41);
  t.equal((await sendCode(app)).statusCode, 200);
  t.equal(outbox.jobs.length, 2);
});

t.test('a new code replaces the old one', async (t) => {
  const { app, clock, outbox } = await buildAuthTestApp(t);
  await sendCode(app);
  const first = outbox.lastCodeFor(PHONE);
  clock.advance(61);
  await sendCode(app);
  const second = outbox.lastCodeFor(PHONE);
  if (first !== second) {
    const old = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/verify',
      payload: { phone: PHONE, code: first },
    });
    t.equal(old.json().code, 'otp_invalid', 'the first code no longer works');
  }
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/verify', payload: { phone: PHONE, code: second } });
  t.equal(res.statusCode, 200);
});

t.test('per-phone hourly limit: rate_limited until the window rolls', async (t) => {
  const { app, clock } = await buildAuthTestApp(t, { OTP_MAX_SENDS_PER_HOUR: '3', OTP_RESEND_SECONDS: '1' });
  for (let i = 0; i < 3; i += 1) {
    t.equal((await sendCode(app)).statusCode, 200);
    clock.advance(2);
  }
  const limited = await sendCode(app);
  t.equal(limited.statusCode, 429);
  t.equal(limited.json().code, 'rate_limited');
  t.equal(Number(limited.headers['retry-after']), 3600 - 6);
  t.equal((await sendCode(app, '+79001234567')).statusCode, 200, 'another phone is unaffected');
  clock.advance(3600);
  t.equal((await sendCode(app)).statusCode, 200);
});

t.test(
  "one client's codes do not use up the owner's: past the free sends the resend gap doubles, up to 15 minutes",
  async (t) => {
    const { app, clock } = await buildAuthTestApp(t, { OTP_MAX_SENDS_PER_HOUR: '3' });
    const stranger = '203.0.113.70';
    for (let i = 0; i < 3; i += 1) {
      t.equal((await sendCode(app, PHONE, {}, stranger)).statusCode, 200);
      clock.advance(60);
    }
    t.equal((await sendCode(app, PHONE, {}, stranger)).json().code, 'rate_limited', 'the stranger used its three');
    // Three codes went to the phone this hour: from now on each further one waits twice as long as the last.
    const gaps: number[] = [];
    let client = 0;
    for (let i = 0; i < 6; i += 1) {
      client += 1;
      const early = await sendCode(app, PHONE, {}, `198.51.100.${client}`);
      t.equal(early.json().code, 'resend_too_soon');
      const wait = Number(early.headers['retry-after']);
      clock.advance(wait);
      t.equal((await sendCode(app, PHONE, {}, `198.51.100.${client}`)).statusCode, 200, `a code after ${wait} s`);
      gaps.push(wait);
    }
    t.same(gaps, [60, 240, 480, 900, 900, 900], 'a minute left of the cooldown, then 4, 8 and at most 15 minutes');
  },
);

t.test('IPv6 clients are counted per /64', async (t) => {
  const { app } = await buildAuthTestApp(t, { SEND_CODE_IP_PER_HOUR: '2' });
  const answers = [];
  for (const [i, from] of ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:fffe', '2001:db8:1:2::abcd'].entries()) {
    answers.push((await sendCode(app, `+7900123458${i}`, {}, from)).statusCode);
  }
  t.same(answers, [200, 200, 429], 'three addresses of one /64 are one client');
  t.equal(
    (await sendCode(app, '+79001234589', {}, '2001:db8:1:3::1')).statusCode,
    200,
    'the next /64 is another client',
  );
  t.equal(
    (await sendCode(app, '+79001234588', {}, '::ffff:203.0.113.5')).statusCode,
    200,
    'an IPv4-mapped address counts as its IPv4 address',
  );
});

t.test('per-IP hourly limit across phones', async (t) => {
  const { app } = await buildAuthTestApp(t, { SEND_CODE_IP_PER_HOUR: '3' });
  const phones = ['+79001234561', '+79001234562', '+79001234563', '+79001234564'];
  const answers = [];
  for (const phone of phones) answers.push(await sendCode(app, phone));
  t.same(
    answers.map((r) => r.statusCode),
    [200, 200, 200, 429],
  );
  t.equal(answers[3]?.json().code, 'rate_limited');
  t.ok(Number(answers[3]?.headers['retry-after']) > 3500);
});

t.test('a spoofed X-Forwarded-For buys no fresh limit; a trusted proxy is believed', async (t) => {
  const { app } = await buildAuthTestApp(t, { SEND_CODE_IP_PER_HOUR: '2', TRUSTED_PROXIES: '10.0.0.1' });
  const spoofed = [];
  for (let i = 1; i <= 3; i += 1) {
    spoofed.push(
      await app.inject({
        method: 'POST',
        url: '/api/v1/auth/send-code',
        remoteAddress: '203.0.113.7',
        headers: { 'x-forwarded-for': `198.51.100.${i}` },
        payload: { phone: `+7900123456${i}` },
      }),
    );
  }
  t.same(
    spoofed.map((r) => r.statusCode),
    [200, 200, 429],
    'the socket address is what counts',
  );

  const viaProxy = [];
  for (let i = 1; i <= 3; i += 1) {
    viaProxy.push(
      await app.inject({
        method: 'POST',
        url: '/api/v1/auth/send-code',
        remoteAddress: '10.0.0.1',
        headers: { 'x-forwarded-for': `198.51.100.${10 + i}` },
        payload: { phone: `+7900123457${i}` },
      }),
    );
  }
  t.same(
    viaProxy.map((r) => r.statusCode),
    [200, 200, 200],
    'each client behind the trusted gateway has its own window',
  );
});

t.test('503 when the bus cannot take the message; the code it held is taken back, a retry sends at once', async (t) => {
  const ctx = await buildAuthTestApp(t);
  t.equal((await sendCode(ctx.app)).statusCode, 200);
  ctx.clock.advance(61);
  const send = ctx.outbox.send.bind(ctx.outbox);
  let unsent: string | undefined;
  ctx.outbox.send = async (job) => {
    if (job.kind === 'otp') unsent = job.code;
    throw new AppError('service_unavailable', 'The message could not be queued; try again shortly.', { retryAfter: 1 });
  };
  const res = await sendCode(ctx.app);
  t.equal(res.statusCode, 503);
  t.equal(res.json().code, 'service_unavailable');
  t.ok(unsent, 'a code was made for the message');
  t.equal((await verify(ctx.app, { phone: PHONE, code: unsent! })).json().code, 'otp_expired', 'it signs nobody in');

  ctx.outbox.send = send;
  const retry = await sendCode(ctx.app);
  t.equal(retry.statusCode, 200, 'the retry is not told to wait for the code that never left');
  t.equal((await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) })).statusCode, 200);
});
