import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { eventually, startFakeSmsRu, startFakeTelegramGateway, startFakeTwilio } from '@refstack/shared/testing';
import { MessageLog } from '../../src/sms/message-log.js';
import { smsruReceipts } from '../../src/sms/providers/smsru.js';
import { buildAuthTestApp, PHONE, signIn } from '../auth-test-app.js';

const PUBLIC = 'https://api.example.com';
const CREDENTIALS = {
  SMSRU_API_ID: 'A1B2C3D4-E5F6-0718-293A-4B5C6D7E8F90',
  TWILIO_ACCOUNT_SID: `AC${'0123456789abcdef'.repeat(2)}`,
  TWILIO_AUTH_TOKEN: 'twilio-auth-token-0123456789abcd',
  TWILIO_FROM: '+15005550006',
  TELEGRAM_GATEWAY_TOKEN: 'AAHgateway-token-0123456789',
};

async function setup(t: Test, env: Record<string, string> = {}) {
  const ctx = await buildAuthTestApp(t, {
    SMS_PROVIDERS: 'telegram,smsru,twilio',
    PUBLIC_BASE_URL: PUBLIC,
    ...CREDENTIALS,
    ...env,
  });
  const messages = new MessageLog(ctx.redis, ctx.prefix);
  // The fakes only sign receipts here; nothing is sent to them.
  const smsru = await startFakeSmsRu({ apiId: CREDENTIALS.SMSRU_API_ID });
  const twilio = await startFakeTwilio({
    accountSid: CREDENTIALS.TWILIO_ACCOUNT_SID,
    authToken: CREDENTIALS.TWILIO_AUTH_TOKEN,
  });
  const telegram = await startFakeTelegramGateway({ token: CREDENTIALS.TELEGRAM_GATEWAY_TOKEN });
  t.teardown(() => Promise.all([smsru.stop(), twilio.stop(), telegram.stop()]));
  /** A message a provider took, as the worker records it. */
  const taken = async (id: string, provider: 'smsru' | 'twilio' | 'telegram', providerId: string, to = PHONE) => {
    const ref = { id, kind: 'otp' as const, to, country: 'RU' };
    await messages.open(ref, ctx.clock.now);
    await messages.sent(ref, provider, providerId, ctx.clock.now);
  };
  const post = (provider: string, receipt: { headers: Record<string, string>; body: string }, query = '') =>
    ctx.app.inject({
      method: 'POST',
      url: `/webhooks/sms/${provider}${query}`,
      headers: receipt.headers,
      payload: receipt.body,
    });
  const metrics = async () => (await ctx.app.inject({ method: 'GET', url: '/metrics' })).body;
  return { ctx, messages, smsru, twilio, telegram, taken, post, metrics };
}

t.test(
  'Twilio: a signed status callback moves the message; forged, unsigned and replayed ones change nothing',
  async (t) => {
    const { messages, twilio, taken, post, metrics } = await setup(t);
    const sid = `SM${'ab'.repeat(16)}`;
    await taken('1', 'twilio', sid);
    const url = `${PUBLIC}/webhooks/sms/twilio`;

    const forged = await post(
      'twilio',
      twilio.receipt(sid, 'delivered', { url, authToken: 'another-token-0000000000000000' }),
    );
    t.equal(forged.statusCode, 403);
    t.equal(forged.json().code, 'webhook_signature_invalid');
    const unsigned = twilio.receipt(sid, 'delivered', { url });
    delete unsigned.headers['x-twilio-signature'];
    delete unsigned.headers['X-Twilio-Signature'];
    t.equal((await post('twilio', unsigned)).statusCode, 403, 'unsigned');
    const elsewhere = await post(
      'twilio',
      twilio.receipt(sid, 'delivered', { url: 'https://evil.example.com/webhooks/sms/twilio' }),
    );
    t.equal(elsewhere.statusCode, 403, 'signed for another URL');
    t.match(await messages.get(PHONE, '1'), { status: 'sent' }, 'none of them changed the status');

    const sent = twilio.receipt(sid, 'sent', { url });
    t.equal((await post('twilio', sent)).statusCode, 200, 'a status the message already has: taken, no change');
    const delivered = twilio.receipt(sid, 'delivered', { url });
    const ok = await post('twilio', delivered);
    t.equal(ok.statusCode, 200);
    t.match(await messages.get(PHONE, '1'), { status: 'delivered' });
    const replay = await post('twilio', delivered);
    t.equal(replay.statusCode, 200, 'a second copy is answered as taken, so that Twilio stops resending it');
    t.match(await messages.get(PHONE, '1'), { status: 'delivered' });
    t.match(await metrics(), /sms_delivered_total\{[^}]*provider="twilio"[^}]*\} 1/, 'counted once');

    await taken('2', 'twilio', `SM${'cd'.repeat(16)}`);
    t.equal(
      (await post('twilio', twilio.receipt(`SM${'cd'.repeat(16)}`, 'undelivered', { url, errorCode: '30003' })))
        .statusCode,
      200,
    );
    t.match(await messages.get(PHONE, '2'), { status: 'failed', reason: /30003/ });
    t.match(await metrics(), /sms_failed_total\{[^}]*provider="twilio"[^}]*\} 1/);
  },
);

t.test('Twilio without PUBLIC_BASE_URL: no signature can be checked, every receipt is refused', async (t) => {
  const { twilio, taken, post, messages } = await setup(t, { PUBLIC_BASE_URL: '' });
  const sid = `SM${'ef'.repeat(16)}`;
  await taken('3', 'twilio', sid);
  const res = await post('twilio', twilio.receipt(sid, 'delivered', { url: `${PUBLIC}/webhooks/sms/twilio` }));
  t.equal(res.statusCode, 403);
  t.match(await messages.get(PHONE, '3'), { status: 'sent' });
});

t.test(
  'SMS.ru: a callback with the right hash is answered 100; a wrong hash or a replay changes nothing',
  async (t) => {
    const { smsru, taken, post, messages, metrics } = await setup(t);
    await taken('4', 'smsru', '000000-10000004');
    const forged = await post('smsru', smsru.receipt('000000-10000004', 103, { apiId: 'not-our-api-id' }));
    t.equal(forged.statusCode, 403);
    t.equal(forged.json().code, 'webhook_signature_invalid');
    t.match(await messages.get(PHONE, '4'), { status: 'sent' });
    const delivered = smsru.receipt('000000-10000004', 103);
    const ok = await post('smsru', delivered);
    t.equal(ok.statusCode, 200);
    t.equal(ok.body, '100', 'the answer SMS.ru stops on');
    t.match(await messages.get(PHONE, '4'), { status: 'delivered' });
    const again = await post('smsru', delivered);
    t.equal(again.statusCode, 200);
    t.equal(again.body, '100', 'a second copy gets 100 too, or SMS.ru would resend it for good');
    t.match(await metrics(), /sms_delivered_total\{[^}]*provider="smsru"[^}]*\} 1/, 'counted once');
    const hash = /hash=([0-9a-f]+)/.exec(delivered.body)?.[1] ?? '';
    const spellings: Array<[string, string]> = [
      ['suffixed', `${hash}z`],
      ['suffixed after a space', `${hash}%20`],
      ['suffixed with hex', `${hash}00`],
    ];
    for (const [spelling, altered] of spellings) {
      const replay = await post('smsru', { ...delivered, body: delivered.body.replace(hash, altered) });
      t.equal(replay.statusCode, 403, `${spelling}: ${replay.body}`);
      t.equal(replay.json().code, 'webhook_signature_invalid', spelling);
    }
    const upper = await post('smsru', { ...delivered, body: delivered.body.replace(hash, hash.toUpperCase()) });
    t.equal(upper.body, '100', 'the hash in upper case is the same receipt');
    t.match(
      await metrics(),
      /sms_delivered_total\{[^}]*provider="smsru"[^}]*\} 1/,
      'taken as a copy, not counted again',
    );
  },
);

t.test('Telegram Gateway: a signed, fresh report moves the message; stale or forged ones do not', async (t) => {
  const { ctx, telegram, taken, post, messages } = await setup(t);
  await taken('5', 'telegram', 'tg-req-5');
  const stale = await post(
    'telegram',
    telegram.receipt('tg-req-5', 'delivered', { timestamp: Math.floor(ctx.clock.now / 1000) - 3600 }),
  );
  t.equal(stale.statusCode, 403, 'an hour old');
  const forged = await post(
    'telegram',
    telegram.receipt('tg-req-5', 'delivered', { token: 'another-token', timestamp: Math.floor(ctx.clock.now / 1000) }),
  );
  t.equal(forged.statusCode, 403);
  t.match(await messages.get(PHONE, '5'), { status: 'sent' });
  const fresh = telegram.receipt('tg-req-5', 'read', { timestamp: Math.floor(ctx.clock.now / 1000) });
  t.equal((await post('telegram', fresh)).statusCode, 200);
  t.match(await messages.get(PHONE, '5'), { status: 'delivered' }, 'read means delivered');
  const again = await post('telegram', fresh);
  t.equal(again.statusCode, 200, 'a second copy is answered as taken, so that Telegram stops resending it');
  t.match(await messages.get(PHONE, '5'), { status: 'delivered' });

  for (const body of ['null', '42', '"delivered"']) {
    const odd = await post('telegram', telegram.receipt('', '', { body, timestamp: Math.floor(ctx.clock.now / 1000) }));
    t.equal(odd.statusCode, 400, `a signed body of ${body} is refused as what it is, not a 500`);
    t.equal(odd.json().code, 'validation_failed');
  }
});

t.test('a copy that arrives while the first is being applied is asked to come again, so none is lost', async (t) => {
  const { ctx, smsru, taken, post, messages } = await setup(t);
  await taken('6', 'smsru', '000000-10000006');
  const delivered = smsru.receipt('000000-10000006', 103);
  const { replayKey } = smsruReceipts({
    apiId: CREDENTIALS.SMSRU_API_ID,
    from: undefined,
    baseUrl: 'https://sms.ru',
  }).verify(
    { url: '/webhooks/sms/smsru', headers: delivered.headers, body: Buffer.from(delivered.body) },
    ctx.clock.now,
  );
  const key = `${ctx.prefix}:sms:receipt:${createHash('sha256').update(replayKey).digest('hex')}`;

  await ctx.redis.set(key, 'applying', 'PX', 60_000); // as the first copy leaves it while it works
  const during = await post('smsru', delivered);
  t.equal(during.statusCode, 503, 'not 200: the first copy may yet fail');
  t.equal(during.json().code, 'service_unavailable');
  t.ok(Number(during.headers['retry-after']) > 0);
  t.match(await messages.get(PHONE, '6'), { status: 'sent' });

  await ctx.redis.del(key); // the first copy failed and gave its claim back
  const again = await post('smsru', delivered);
  t.equal(again.body, '100');
  t.match(await messages.get(PHONE, '6'), { status: 'delivered' }, 'the copy the provider sent again was applied');
  t.equal((await post('smsru', delivered)).body, '100', 'and a copy after that is answered as taken');
});

t.test('receipts of providers not routed to, or unknown, are 404; they need no token', async (t) => {
  const { ctx, smsru } = await setup(t, { SMS_PROVIDERS: 'console' });
  for (const provider of ['smsru', 'smsc', 'nope']) {
    const res = await ctx.app.inject({ method: 'POST', url: `/webhooks/sms/${provider}`, ...smsru.receipt('x', 103) });
    t.equal(res.statusCode, 404, provider);
    t.equal(res.json().code, 'not_found');
  }
});

t.test('a verified code counts for the provider that carried it', async (t) => {
  const { ctx, taken, metrics } = await setup(t);
  await taken('6', 'telegram', 'tg-req-6');
  await signIn(ctx);
  const counted = /sms_codes_verified_total\{(?=[^}]*provider="telegram")(?=[^}]*country="RU")[^}]*\} 1/;
  await eventually('the verified code counted', async () => counted.test(await metrics()), 5000);
  t.pass('counted under telegram and RU');
});
