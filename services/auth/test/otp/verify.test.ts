import t from 'tap';
import { Redis } from 'ioredis';
import { loginCodeIn } from '@refstack/shared/contracts';
import { redisOptions } from '@refstack/shared/platform';
import { createTestRedisPrefix, eventually, redisContents, TEST_REDIS_URL, testConfig } from '@refstack/shared/testing';
import { buildApp } from '../../src/app.js';
import { hashOtp } from '../../src/otp/otp-code.js';
import { OtpStore } from '../../src/otp/otp-store.js';
import { STORE_LIMITS } from './store-limits.js';
import { rangeGuard } from '../../src/guard/index.js';
import { createReferralClient } from '../../src/referral-client.js';
import { startTestSmsWorker } from '../sms/sms-test-worker.js';
import {
  buildAuthTestApp,
  INTERNAL_TOKEN,
  PHONE,
  QUIET,
  sendCode,
  signIn,
  startReferralStandIn,
  verify,
} from '../auth-test-app.js';

/** A code that is certainly not `code`: the next one, of the same length. */
const wrongCode = (code: string) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, '0');

t.test('first success creates the user and opens a session; the code is single-use', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app, '89123456789');
  const code = ctx.outbox.lastCodeFor(PHONE);
  const res = await verify(ctx.app, { phone: '+7 (912) 345-67-89', code });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.equal(body.created, true);
  t.match(body.user, { id: '1', phone: PHONE, invite_code: /^[A-Z0-9]{6}$/ });
  t.match(body.tokens, { access: String, refresh: String, token_type: 'Bearer', expires_in: 900 });
  t.same(ctx.referral.calls, [{ phone: PHONE }]);

  const again = await verify(ctx.app, { phone: PHONE, code });
  t.equal(again.statusCode, 401);
  t.equal(again.json().code, 'otp_expired');

  ctx.clock.advance(61);
  const second = await signIn(ctx);
  t.equal(second.created, false, 'the next sign-in finds the user');
});

t.test('parallel verifies with the right code: exactly one signs in, the others never reach referral', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const answers = await Promise.all(
    Array.from({ length: 10 }, () => verify(ctx.app, { phone: PHONE, code, invite_code: 'AB12CD' })),
  );
  t.equal(answers.filter((r) => r.statusCode === 200).length, 1, 'one winner');
  t.same(
    answers.filter((r) => r.statusCode !== 200).map((r) => r.json().code),
    Array(9).fill('otp_expired'),
  );
  t.equal(ctx.referral.calls.length, 1, 'only the winner signed in at referral (created the user, applied the invite)');
  t.equal((await verify(ctx.app, { phone: PHONE, code })).json().code, 'otp_expired', 'and the code is spent');
});

t.test("the first seed's body: phone without plus, code as a string or a number", async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_RESEND_SECONDS: '0' });
  await sendCode(ctx.app, '+79346559036');
  const res = await verify(ctx.app, { phone: '79346559036', code: ctx.outbox.lastCodeFor('+79346559036') });
  t.equal(res.statusCode, 200);

  await sendCode(ctx.app, PHONE);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const asNumber = await verify(ctx.app, { phone: PHONE, code: Number(code) });
  t.equal(asNumber.statusCode, 200, `the number ${Number(code)} is read as "${code}"`);
});

t.test('malformed codes and invite codes are validation errors and cost no attempt', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  for (const code of ['12', '1234567', 'abcdef', '', 1234567, -1, 1.5, null, true]) {
    const res = await verify(ctx.app, { phone: PHONE, code });
    t.equal(res.statusCode, 400, JSON.stringify(code));
    t.equal(res.json().code, 'validation_failed');
  }
  const badInvite = await verify(ctx.app, {
    phone: PHONE,
    code: ctx.outbox.lastCodeFor(PHONE),
    invite_code: 'not-a-code',
  });
  t.equal(badInvite.statusCode, 400);
  t.match(badInvite.json(), { code: 'validation_failed', errors: [{ field: 'invite_code' }] });
  t.equal((await verify(ctx.app, { phone: 'nope', code: '123456' })).json().code, 'invalid_phone');
  const ok = await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(ok.statusCode, 200, 'the code still works: nothing above counted as a try');
});

t.test('no code requested is otp_expired', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const res = await verify(ctx.app, { phone: PHONE, code: '123456' });
  t.equal(res.statusCode, 401);
  t.equal(res.json().code, 'otp_expired');
});

t.test('a code expires after OTP_TTL_SECONDS (injected clock)', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  ctx.clock.advance(299);
  const wrong = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  t.equal(wrong.json().code, 'otp_invalid', 'still alive at 299 s');
  ctx.clock.advance(1);
  const res = await verify(ctx.app, { phone: PHONE, code });
  t.equal(res.statusCode, 401);
  t.equal(res.json().code, 'otp_expired');
});

t.test('five wrong tries burn the code', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  for (let left = 4; left >= 1; left -= 1) {
    const res = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
    t.equal(res.statusCode, 401);
    t.match(res.json(), { code: 'otp_invalid', attempts_left: left });
  }
  const fifth = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  t.equal(fifth.statusCode, 429);
  t.match(fifth.json(), { code: 'otp_attempts_exceeded', attempts_left: 0 });
  const right = await verify(ctx.app, { phone: PHONE, code });
  t.equal(right.statusCode, 429, 'the right code no longer works');
  t.equal(right.json().code, 'otp_attempts_exceeded');
  ctx.clock.advance(61);
  await sendCode(ctx.app);
  t.equal(
    (await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) })).statusCode,
    200,
    'a new code works',
  );
});

t.test('40 parallel wrong guesses count as at most OTP_MAX_ATTEMPTS tries', async (t) => {
  // The per-code limit alone: the client's hourly budget of failed verifies would stop the guesses first.
  const ctx = await buildAuthTestApp(t, { VERIFY_IP_FAILED_PER_HOUR: '1000' });
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const guesses = Array.from({ length: 40 }, (_, i) =>
    String((Number(code) + 1 + i) % 10 ** code.length).padStart(code.length, '0'),
  );
  const answers = await Promise.all(guesses.map((guess) => verify(ctx.app, { phone: PHONE, code: guess })));
  const codes = answers.map((r) => r.json().code as string);
  t.equal(codes.filter((c) => c === 'otp_invalid').length, 4);
  t.equal(codes.filter((c) => c === 'otp_attempts_exceeded').length, 36);
  const failures = await ctx.redis.zcard(`${ctx.prefix}:otp:{${PHONE}}:fails`);
  t.equal(failures, 5, 'exactly five tries were counted');
  t.equal((await verify(ctx.app, { phone: PHONE, code })).json().code, 'otp_attempts_exceeded');
});

t.test('the daily failure cap stops verify and send-code for the phone from that client only', async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_MAX_FAILED_PER_DAY: '3', OTP_MAX_ATTEMPTS: '2' });
  await sendCode(ctx.app);
  let code = ctx.outbox.lastCodeFor(PHONE);
  await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  ctx.clock.advance(61);
  await sendCode(ctx.app);
  code = ctx.outbox.lastCodeFor(PHONE);
  const filling = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  t.match(filling.json(), { code: 'otp_attempts_exceeded', attempts_left: 0 }, 'the try that fills the day says so');
  const capped = await verify(ctx.app, { phone: PHONE, code });
  t.equal(capped.statusCode, 429);
  t.equal(capped.json().code, 'rate_limited', 'even the right code is refused');
  t.ok(Number(capped.headers['retry-after']) > 23 * 3600);
  ctx.clock.advance(61);
  const send = await sendCode(ctx.app);
  t.equal(send.statusCode, 429);
  t.equal(send.json().code, 'rate_limited');

  // The phone's owner, at another address, is not locked out by what this client did.
  const owner = '198.51.100.20';
  t.equal((await sendCode(ctx.app, PHONE, {}, owner)).statusCode, 200);
  t.equal(
    (await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) }, owner)).statusCode,
    200,
    'the owner signs in',
  );

  ctx.clock.advance(24 * 3600);
  t.equal((await sendCode(ctx.app)).statusCode, 200);
  t.equal(
    (await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) })).statusCode,
    200,
    'a day later it works again',
  );
});

t.test('the wrong try that fills the daily failure cap names the wait for send-code', async (t) => {
  // The defaults: OTP_MAX_ATTEMPTS 5, OTP_MAX_FAILED_PER_DAY 20, so the fourth burned code fills the day.
  const ctx = await buildAuthTestApp(t);
  let burned;
  for (let round = 1; round <= 4; round += 1) {
    if (round > 1) ctx.clock.advance(61);
    t.equal((await sendCode(ctx.app)).statusCode, 200, `code ${round}`);
    const code = ctx.outbox.lastCodeFor(PHONE);
    for (let i = 0; i < 5; i += 1) burned = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  }
  t.match(burned?.json(), { code: 'otp_attempts_exceeded', attempts_left: 0 });
  const send = await sendCode(ctx.app);
  t.match(send.json(), { code: 'rate_limited' }, 'send-code refuses this client for the day');
  t.ok(send.json().retry_after > 23 * 3600);
  t.equal(burned?.json().retry_after, send.json().retry_after, 'the burned code named the same wait');
  t.equal(burned?.headers['retry-after'], String(send.json().retry_after));
});

t.test(
  'a client held by both the daily failure cap and the hourly send cap is told the later of the two',
  async (t) => {
    // One send an hour. The day's 20 failures fill in four rounds, the first 23.5 hours before the
    // last, so the failure cap opens in half an hour and the send cap, filled by the last round, in one.
    const ctx = await buildAuthTestApp(t, { OTP_MAX_SENDS_PER_HOUR: '1' });
    let burned;
    for (const [round, wait] of [0, 3600, 3600, 21.5 * 3600].entries()) {
      ctx.clock.advance(wait);
      t.equal((await sendCode(ctx.app)).statusCode, 200, `code ${round + 1}`);
      const code = ctx.outbox.lastCodeFor(PHONE);
      for (let i = 0; i < 5; i += 1) burned = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
    }
    const send = await sendCode(ctx.app);
    t.match(send.json(), { code: 'rate_limited' });
    t.ok(
      send.json().retry_after > 3500,
      `the send cap's hour, not the failures' half hour (${send.json().retry_after} s)`,
    );
    t.equal(burned?.json().retry_after, send.json().retry_after, 'the last wrong try named the same wait');
  },
);

t.test('a wrong try that fills the daily failure cap before the code is burned names the wait', async (t) => {
  // 7 a day, 5 a code: the second wrong try of the second code fills the day with three tries of the
  // code left. A code that lives a day is still alive when the day's first failures roll out.
  const ctx = await buildAuthTestApp(t, { OTP_MAX_FAILED_PER_DAY: '7', OTP_TTL_SECONDS: '86400' });
  t.equal((await sendCode(ctx.app)).statusCode, 200);
  let code = ctx.outbox.lastCodeFor(PHONE);
  for (let i = 0; i < 5; i += 1) await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  ctx.clock.advance(61);
  t.equal((await sendCode(ctx.app)).statusCode, 200);
  code = ctx.outbox.lastCodeFor(PHONE);
  t.match(
    (await verify(ctx.app, { phone: PHONE, code: wrongCode(code) })).json(),
    { code: 'otp_invalid', attempts_left: 1 },
    "the day's one try left, not the code's four",
  );
  const filling = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) });
  t.equal(filling.statusCode, 429);
  t.match(filling.json(), { code: 'otp_attempts_exceeded', attempts_left: 0 }, 'not otp_invalid with tries left');
  t.ok(filling.json().retry_after > 23 * 3600, 'a day, not a minute');
  t.equal(filling.headers['retry-after'], String(filling.json().retry_after));
  const right = await verify(ctx.app, { phone: PHONE, code });
  t.match(right.json(), { code: 'rate_limited' }, 'the tries it would have promised are refused');
  const send = await sendCode(ctx.app);
  t.match(send.json(), { code: 'rate_limited' });
  t.equal(filling.json().retry_after, send.json().retry_after, 'and it named the wait send-code meets');

  ctx.clock.advance(filling.json().retry_after);
  t.match(
    (await verify(ctx.app, { phone: PHONE, code })).json(),
    { code: 'otp_attempts_exceeded' },
    'once the day opens again, the code is still burned for this client',
  );
  t.equal((await sendCode(ctx.app)).statusCode, 200, 'and a new one can be asked for');
});

t.test("a stranger's wrong tries burn the code for the stranger only", async (t) => {
  const ctx = await buildAuthTestApp(t);
  const stranger = '203.0.113.9';
  t.equal((await sendCode(ctx.app, PHONE, {}, '198.51.100.20')).statusCode, 200);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const answers = [];
  for (let i = 0; i < 6; i += 1)
    answers.push((await verify(ctx.app, { phone: PHONE, code: wrongCode(code) }, stranger)).json().code);
  t.same(answers, [
    'otp_invalid',
    'otp_invalid',
    'otp_invalid',
    'otp_invalid',
    'otp_attempts_exceeded',
    'otp_attempts_exceeded',
  ]);
  t.equal(
    (await verify(ctx.app, { phone: PHONE, code }, stranger)).json().code,
    'otp_attempts_exceeded',
    'the right code no longer works for the stranger',
  );
  t.equal(
    (await verify(ctx.app, { phone: PHONE, code }, '198.51.100.20')).statusCode,
    200,
    'it still works for the owner',
  );
});

t.test('an attacker at another address cannot keep the owner out for more than 15 minutes', async (t) => {
  // The per-phone limits alone: the attacker's hourly budget of failed verifies would stop it sooner.
  const ctx = await buildAuthTestApp(t, { VERIFY_IP_FAILED_PER_HOUR: '1000' });
  const attacker = '203.0.113.66';
  const owner = '198.51.100.7';
  // Every 10 seconds the attacker does all it may: asks for a fresh code (replacing the owner's)
  // and sends three wrong guesses; a no-code probe or a burned code does not stop it.
  const attack = async () => {
    await sendCode(ctx.app, PHONE, {}, attacker);
    const current = ctx.outbox.jobs.some((j) => j.to === PHONE) ? ctx.outbox.lastCodeFor(PHONE) : '000000';
    for (let i = 0; i < 3; i += 1) await verify(ctx.app, { phone: PHONE, code: wrongCode(current) }, attacker);
  };
  // Ten minutes of it first: the attacker has spent all its sends and wrong tries for the phone.
  for (let i = 0; i < 60; i += 1) {
    await attack();
    ctx.clock.advance(10);
  }
  const ownerStarted = ctx.clock.now;
  let ownerCode: string | undefined;
  let signedInAfter: number | undefined;
  while (signedInAfter === undefined && ctx.clock.now - ownerStarted <= 15 * 60_000) {
    await attack();
    if (ownerCode === undefined) {
      if ((await sendCode(ctx.app, PHONE, {}, owner)).statusCode === 200) ownerCode = ctx.outbox.lastCodeFor(PHONE);
    } else {
      const res = await verify(ctx.app, { phone: PHONE, code: ownerCode }, owner);
      if (res.statusCode === 200) signedInAfter = (ctx.clock.now - ownerStarted) / 1000;
      else ownerCode = undefined;
    }
    ctx.clock.advance(10);
  }
  t.ok(signedInAfter !== undefined, `the owner signed in ${signedInAfter} s after starting, under attack`);
});

t.test(
  'past OTP_PHONE_FAILED_PER_DAY wrong tries from everyone, verify for the phone slows, never over 15 minutes',
  async (t) => {
    const ctx = await buildAuthTestApp(t);
    const dayStarted = ctx.clock.now;
    let client = 0;
    const fresh = () => {
      client += 1;
      return `198.18.${client >> 8}.${client & 255}`;
    };
    // A distributed attacker: every request from an address of its own, retrying as soon as it is told.
    let evaluated = 0;
    let longestWait = 0;
    while (ctx.clock.now - dayStarted < 24 * 3600_000) {
      const from = fresh();
      const sent = await sendCode(ctx.app, PHONE, {}, from);
      const sendWait = sent.statusCode === 429 ? Number(sent.headers['retry-after']) : 0;
      const code = ctx.outbox.lastCodeFor(PHONE);
      const res = await verify(ctx.app, { phone: PHONE, code: wrongCode(code) }, from);
      const answer = res.json().code as string;
      if (answer === 'otp_invalid') {
        evaluated += 1;
        ctx.clock.advance(1);
      } else if (answer === 'rate_limited') {
        const wait = Number(res.headers['retry-after']);
        longestWait = Math.max(longestWait, wait);
        ctx.clock.advance(wait);
      } else {
        t.equal(answer, 'otp_expired', 'otherwise no code is pending');
        ctx.clock.advance(Math.max(1, sendWait));
      }
    }
    t.ok(evaluated >= 100, `the first 100 wrong tries of the day are looked at (${evaluated})`);
    t.ok(evaluated <= 220, `${evaluated} guesses at one phone in 24 h: below 0.1% of 6-digit codes (1,000)`);
    t.ok(longestWait > 0 && longestWait <= 900, `the longest closed stretch was ${longestWait} s`);
  },
);

t.test("one client's failed verifies and no-code probes across phones are limited per hour", async (t) => {
  const ctx = await buildAuthTestApp(t, { VERIFY_IP_FAILED_PER_HOUR: '3' });
  const watcher = '203.0.113.40';
  const probe = (phone: string, from = watcher) => verify(ctx.app, { phone, code: '123456' }, from);
  t.equal((await probe('+79001230001')).json().code, 'otp_expired', 'a probe for a phone with no code');
  await sendCode(ctx.app, '+79001230002', {}, '198.51.100.1');
  t.equal(
    (
      await verify(ctx.app, { phone: '+79001230002', code: wrongCode(ctx.outbox.lastCodeFor('+79001230002')) }, watcher)
    ).json().code,
    'otp_invalid',
  );
  // A sign-in with the right code costs nothing.
  await sendCode(ctx.app, '+79001230003', {}, watcher);
  t.equal(
    (await verify(ctx.app, { phone: '+79001230003', code: ctx.outbox.lastCodeFor('+79001230003') }, watcher))
      .statusCode,
    200,
  );
  t.equal((await probe('+79001230004')).json().code, 'otp_expired');
  const limited = await probe('+79001230005');
  t.equal(limited.statusCode, 429);
  t.equal(limited.json().code, 'rate_limited');
  t.ok(Number(limited.headers['retry-after']) > 3500, 'until the hour rolls');
  t.equal(
    (await probe('+79001230005', '203.0.113.41')).json().code,
    'otp_expired',
    'another address has its own budget',
  );

  // IPv6 clients are counted per /64: the rest of the subnet is the same client.
  for (const host of ['1', '2', 'ffff'])
    t.equal((await probe('+79001230006', `2001:db8:aa:bb::${host}`)).json().code, 'otp_expired');
  t.equal(
    (await probe('+79001230006', '2001:db8:aa:bb:1234::9')).json().code,
    'rate_limited',
    'a fourth address in that /64 is refused',
  );
  t.equal(
    (await probe('+79001230006', '2001:db8:aa:bc::1')).json().code,
    'otp_expired',
    'the next /64 is another client',
  );
  ctx.clock.advance(3600);
  t.equal((await probe('+79001230005')).json().code, 'otp_expired', 'an hour later the address may try again');
});

t.test('a refused invite passes through and the code stays valid for a retry without it', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const refused = await verify(ctx.app, { phone: PHONE, code, invite_code: ' nope00 ' });
  t.equal(refused.statusCode, 404);
  t.equal(refused.json().code, 'invite_not_found');
  t.same(ctx.referral.calls.at(-1), { phone: PHONE, invite_code: 'NOPE00' }, 'the invite code went in canonical form');
  const retry = await verify(ctx.app, { phone: PHONE, code });
  t.equal(retry.statusCode, 200);
});

t.test('REFERRAL_URLS with the first instance refusing connections: sign-ins go to the next', async (t) => {
  const standIn = await startReferralStandIn(t);
  const ctx = await buildAuthTestApp(t, { REFERRAL_URLS: `http://127.0.0.1:1,${standIn.url}` });
  for (const n of [1, 2, 3]) {
    const phone = `+7916555000${n}`;
    await sendCode(ctx.app, phone);
    const res = await verify(ctx.app, { phone, code: ctx.outbox.lastCodeFor(phone) });
    t.equal(res.statusCode, 200, `sign-in ${n} reached the instance that answers`);
  }
  t.match(
    ctx.logs.lines.find((line) => line['msg'] === 'upstream instance taken out'),
    { upstream: 'referral', instance: 'http://127.0.0.1:1', reason: 'ECONNREFUSED' },
    'the refusing instance was taken out',
  );
});

t.test('referral unreachable: 503 and the code stays valid', async (t) => {
  const down = createReferralClient({
    bases: ['http://127.0.0.1:1'],
    internalToken: INTERNAL_TOKEN,
    log: QUIET,
    probeIntervalMs: 0,
    ejectMs: 10_000,
    referralTimeoutMs: 5000,
  });
  t.teardown(() => down.close());
  const ctx = await buildAuthTestApp(t, {}, { referralClient: down });
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const res = await verify(ctx.app, { phone: PHONE, code });
  t.equal(res.statusCode, 503);
  t.match(res.headers['content-type'], /^application\/problem\+json/);
  t.equal(res.json().code, 'service_unavailable');
  t.ok(res.headers['retry-after']);

  // The same code, verified against a reachable referral service, still signs in.
  const up = createReferralClient({
    bases: [ctx.referral.url],
    internalToken: INTERNAL_TOKEN,
    log: QUIET,
    probeIntervalMs: 0,
    ejectMs: 10_000,
    referralTimeoutMs: 5000,
  });
  t.teardown(() => up.close());
  const app2 = await buildApp(testConfig({ REDIS_KEY_PREFIX: ctx.prefix }), {
    redis: ctx.redis,
    now: () => ctx.clock.now,
    sms: ctx.outbox,
    referral: up,
  });
  t.teardown(() => app2.close());
  t.equal((await verify(app2, { phone: PHONE, code })).statusCode, 200);
});

t.test('a sign-in slower than auth may wait is a 503 that leaves the code valid, not a spent code', async (t) => {
  const ctx = await buildAuthTestApp(t, { REFERRAL_TIMEOUT_MS: '300' });
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  ctx.referral.delay.ms = 1500;
  const slow = await verify(ctx.app, { phone: PHONE, code });
  t.equal(slow.statusCode, 503);
  t.equal(slow.json().code, 'service_unavailable');
  ctx.referral.delay.ms = 0;
  t.equal(
    (await verify(ctx.app, { phone: PHONE, code })).statusCode,
    200,
    'the same code signs in once referral answers in time',
  );
});

t.test('a sign-in whose session cannot be opened leaves the code valid', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  t.equal((await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) })).statusCode, 200);
  ctx.clock.advance(61);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  // The user's session list is not a sorted set: opening a session fails, as on a Redis Cluster
  // whose sessions' slot fails over while the code's slot answers.
  const index = `${ctx.prefix}:user-sessions:{1}`;
  await ctx.redis.set(index, 'not a session list');
  const failed = await verify(ctx.app, { phone: PHONE, code });
  t.ok(failed.statusCode >= 500, failed.body);
  t.match(failed.headers['content-type'], /^application\/problem\+json/);
  t.notMatch(failed.body, 'WRONGTYPE', 'no internals in the answer');
  await ctx.redis.del(index);
  const retried = await verify(ctx.app, { phone: PHONE, code });
  t.equal(retried.statusCode, 200, retried.body);
  t.equal((await verify(ctx.app, { phone: PHONE, code })).json().code, 'otp_expired', 'and then it is spent');
  // Two codes reached their owner (the first sign-in's and this one), each counted once for the
  // range's conversion, the given-back try not at all; counted with their sends, once settled.
  const ranges = rangeGuard(ctx.redis, testConfig({ REDIS_KEY_PREFIX: ctx.prefix }));
  const verified = async () => (await ranges.state(PHONE, ctx.clock.now + 400_000, true)).verified;
  await eventually('both counted', async () => (await verified()) >= 2, 10_000);
  t.equal(await verified(), 2);
});

t.test('a code replaced while its sign-in is at referral signs nobody in and leaves no session', async (t) => {
  const ctx = await buildAuthTestApp(t);
  await sendCode(ctx.app);
  const code = ctx.outbox.lastCodeFor(PHONE);
  let letGo = () => undefined as void;
  ctx.referral.hold.until = new Promise<void>((resolve) => (letGo = resolve));
  const pending = verify(ctx.app, { phone: PHONE, code });
  await eventually('the sign-in reached referral', () => ctx.referral.hold.arrived === 1, 10_000);
  ctx.referral.hold.until = undefined;
  ctx.clock.advance(61);
  t.equal((await sendCode(ctx.app)).statusCode, 200, 'a new code replaces the claimed one');
  letGo();
  const res = await pending;
  t.equal(res.statusCode, 401);
  t.equal(res.json().code, 'otp_expired');
  const sessions = [...(await redisContents(ctx.redis, ctx.prefix)).keys()].filter((key) => key.includes('session'));
  t.same(sessions, [], 'no session, not even one whose tokens were never handed out');
  t.equal((await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) })).statusCode, 200);
});

t.test('a wrong service credential at referral is a 503 for the client, not a leak', async (t) => {
  const ctx = await buildAuthTestApp(t, { INTERNAL_TOKEN: 'not-the-one-referral-knows-xxxxxxxx' });
  await sendCode(ctx.app);
  const res = await verify(ctx.app, { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(res.statusCode, 503);
  t.equal(res.json().code, 'service_unavailable');
});

t.test('the code appears in no response and no log line', async (t) => {
  const ctx = await buildAuthTestApp(t, { OTP_LENGTH: '8', LOG_LEVEL: 'trace' });
  const bodies: string[] = [];
  const sent = await sendCode(ctx.app);
  bodies.push(sent.body);
  const code = ctx.outbox.lastCodeFor(PHONE);
  const wrong = String((Number(code) + 1) % 1e8).padStart(8, '0');
  bodies.push((await verify(ctx.app, { phone: PHONE, code: wrong })).body);
  bodies.push((await verify(ctx.app, { phone: PHONE, code })).body);
  bodies.push((await verify(ctx.app, { phone: PHONE, code })).body);
  const standalone = new RegExp(`(?<![0-9])${code}(?![0-9])`);
  for (const body of bodies) t.notMatch(body, standalone);
  t.ok(ctx.logs.raw.length > 0, 'there were log lines');
  t.notMatch(ctx.logs.text(), standalone, 'no log line holds the code');
  t.notMatch(ctx.logs.text(), /login code is/);
});

t.test('only an HMAC of the code is stored; the message holding it leaves Redis once sent', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, redisOptions('api'));
  await redis.connect();
  t.teardown(() => redis.disconnect());
  const referral = await startReferralStandIn(t);
  const config = testConfig({ REDIS_KEY_PREFIX: prefix, REFERRAL_URL: referral.url, INTERNAL_TOKEN, OTP_LENGTH: '8' });
  // The real queue, not an outbox: the code is read from the job as the worker reads it.
  const app = await buildApp(config, { redis });
  t.teardown(() => app.close());
  t.equal((await sendCode(app)).statusCode, 200);

  const queued = await redisContents(redis, prefix);
  // The job's data is JSON inside the hash's JSON: quotes arrive escaped.
  const job = [...queued.values()].find((value) => /kind\W+otp/.test(value));
  const code = /code\W+(\d{8})\b/.exec(job ?? '')?.[1];
  if (!code) throw new Error('no job holds the message');
  const otpState = [...queued].filter(([key]) => key.includes(':otp:'));
  t.ok(otpState.length > 0, 'the OTP state is in Redis');
  t.same(
    otpState.filter(([, value]) => value.includes(code)).map(([key]) => key),
    [],
    'no OTP key holds the code',
  );
  t.ok(
    otpState.some(([, value]) => value.includes(hashOtp(config.otp.hmacSecret, PHONE, code))),
    'the HMAC bound to the phone is what is kept',
  );

  const { worker, printed } = await startTestSmsWorker(t, { prefix, env: { OTP_LENGTH: '8' } });
  await eventually('the worker sent it', () => printed.length > 0, 10_000);
  t.equal(loginCodeIn(printed[0] ?? ''), code, 'the worker sent it');
  t.equal((await verify(app, { phone: PHONE, code })).statusCode, 200);
  await worker.close();
  const after = await redisContents(redis, prefix);
  t.same(
    [...after].filter(([, value]) => value.includes(code)).map(([key]) => key),
    [],
    'once sent and used, no key holds the code',
  );
});

t.test('a checked code names when it was sent, also after OTP_TTL_SECONDS changed', async (t) => {
  const prefix = createTestRedisPrefix(t);
  const redis = new Redis(TEST_REDIS_URL, redisOptions('api'));
  await redis.connect();
  t.teardown(() => redis.disconnect());
  const store = new OtpStore(redis, prefix);
  const limits = STORE_LIMITS;
  const sentAt = 1_800_000_000_000;
  t.equal((await store.issue(PHONE, 'client', 'hash', limits, sentAt)).result, 'ok');
  // A deploy in between made codes live ten minutes: the send's time is still the issue's.
  const checked = await store.check(PHONE, 'client', 'hash', 'claim', { ...limits, ttlMs: 600_000 }, sentAt + 1000);
  t.same(checked, { result: 'ok', sentAt });
});
