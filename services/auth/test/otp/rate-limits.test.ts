import t from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { buildAuthTestApp, PHONE, sendCode, verify } from '../auth-test-app.js';

/** A code that is certainly not `code`: the next one, of the same length. */
const wrongCode = (code: string) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, '0');

/** Every limit the API has, each driven until it answers 429; the answer must say when to come back. */
t.test('every 429 the API can give carries Retry-After and retry_after', async (t) => {
  const seen: Array<{ name: string; res: LightMyRequestResponse }> = [];
  const expect429 = (name: string, res: LightMyRequestResponse, code: string) => {
    t.equal(res.statusCode, 429, `${name}: 429`);
    t.equal(res.json().code, code, `${name}: ${code}`);
    seen.push({ name, res });
  };

  {
    const { app } = await buildAuthTestApp(t);
    await sendCode(app);
    expect429('resend cooldown', await sendCode(app), 'resend_too_soon');
  }
  {
    const { app } = await buildAuthTestApp(t, { SEND_CODE_IP_PER_HOUR: '1' });
    await sendCode(app, '+79001230010');
    expect429('send-code calls per client address', await sendCode(app, '+79001230011'), 'rate_limited');
  }
  {
    const { app } = await buildAuthTestApp(t, { OTP_MAX_SENDS_PER_HOUR: '1', OTP_RESEND_SECONDS: '0' });
    await sendCode(app);
    expect429('codes to one phone per client', await sendCode(app), 'rate_limited');
  }
  {
    const ctx = await buildAuthTestApp(t, { OTP_MAX_FAILED_PER_DAY: '1' });
    await sendCode(ctx.app);
    const code = ctx.outbox.lastCodeFor(PHONE);
    await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
    expect429(
      'wrong tries for one phone per client, at verify',
      await verify(ctx.app, { phone: PHONE, code }),
      'rate_limited',
    );
    ctx.clock.advance(61);
    expect429('wrong tries for one phone per client, at send-code', await sendCode(ctx.app), 'rate_limited');
  }
  {
    const ctx = await buildAuthTestApp(t, { OTP_MAX_ATTEMPTS: '1' });
    await sendCode(ctx.app);
    expect429(
      'wrong tries of one code',
      await verify(ctx.app, { phone: PHONE, code: wrongCode(ctx.outbox.lastCodeFor(PHONE)) }),
      'otp_attempts_exceeded',
    );
  }
  {
    const ctx = await buildAuthTestApp(t, { OTP_PHONE_FAILED_PER_DAY: '1' });
    await sendCode(ctx.app);
    const code = ctx.outbox.lastCodeFor(PHONE);
    await verify(ctx.app, { phone: PHONE, code: wrongCode(code) }, '203.0.113.1');
    expect429(
      'wrong tries for one phone from everyone',
      await verify(ctx.app, { phone: PHONE, code }, '203.0.113.2'),
      'rate_limited',
    );
  }
  {
    const { app } = await buildAuthTestApp(t, { VERIFY_IP_FAILED_PER_HOUR: '1' });
    await verify(app, { phone: '+79001230020', code: '123456' });
    expect429(
      'failed verifies per client address',
      await verify(app, { phone: '+79001230021', code: '123456' }),
      'rate_limited',
    );
  }

  t.equal(seen.length, 8, 'every limit was reached');
  for (const { name, res } of seen) {
    const header = Number(res.headers['retry-after']);
    t.ok(Number.isInteger(header) && header >= 1, `${name}: Retry-After ${res.headers['retry-after']}`);
    t.equal(res.json().retry_after, header, `${name}: retry_after matches the header`);
  }
});
