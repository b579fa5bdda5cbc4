import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { Revocations } from '@refstack/shared/platform';
import { eventually } from '@refstack/shared/testing';
import { AUTH_VERIFY_OVERHEAD_MS, referralWorkMs } from '@refstack/shared/contracts';
import { abandonedAfterMs } from '../../src/account/account-service.js';
import { changeCallTimeoutMs, USER_READ_TIMEOUT_MS } from '../../src/referral-client.js';
import { buildAuthTestApp, PHONE, sendCode, type AuthTestContext } from '../auth-test-app.js';

const CHROME =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) ' +
  'Chrome/120.0.0.0 Mobile Safari/537.36';

interface Tokens {
  access: string;
  refresh: string;
}

/** A sign-in from a device: its own User-Agent and address. */
async function signInOn(ctx: AuthTestContext, ua: string, ip: string, phone = PHONE): Promise<Tokens> {
  // Past the resend gap of the previous sign-in of the same number.
  ctx.clock.advance(61);
  const sent = await sendCode(ctx.app, phone, {}, ip);
  if (sent.statusCode !== 200) throw new Error(`send-code ${sent.statusCode} ${sent.body}`);
  const res = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/verify',
    payload: { phone, code: ctx.outbox.lastCodeFor(phone) },
    headers: { 'user-agent': ua },
    remoteAddress: ip,
  });
  if (res.statusCode !== 200) throw new Error(`verify ${res.statusCode} ${res.body}`);
  return (res.json() as { tokens: Tokens }).tokens;
}

const as = (app: FastifyInstance, access: string) => ({
  get: (url: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${access}` } }),
  post: (url: string, payload?: object) =>
    app.inject({ method: 'POST', url, payload: payload ?? {}, headers: { authorization: `Bearer ${access}` } }),
  del: (url: string, payload?: object) =>
    app.inject({
      method: 'DELETE',
      url,
      ...(payload ? { payload } : {}),
      headers: { authorization: `Bearer ${access}` },
    }),
});

/** Until the sweep has settled every unfinished move and deletion (their index is empty). */
const sweptAll = (ctx: AuthTestContext, what: string) =>
  eventually(
    `the sweep to ${what}`,
    async () => (await ctx.redis.zcard(`${ctx.prefix}:account:unfinished`)) === 0,
    10_000,
    20,
  );

const refresh = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh: token } });

t.test('sessions: listed with device, masked address and which is current; one ended; the rest ended', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const phone = await signInOn(ctx, CHROME, '203.0.113.77');
  const laptop = await signInOn(ctx, 'MyApp/2.1 (iPhone; iOS 17.1)', '2001:db8:85a3:1::7');
  const list = await as(ctx.app, phone.access).get('/api/v1/auth/sessions');
  t.equal(list.statusCode, 200);
  const sessions = (list.json() as { sessions: Array<Record<string, unknown>> }).sessions;
  t.match(sessions, [
    { device: 'MyApp 2 on iOS', ip: '2001:db8:85a3::/48', current: false },
    { device: 'Chrome 120 on Android 14', ip: '203.0.113.0/24', current: true },
  ]);
  t.notMatch(list.body, /203\.0\.113\.77|85a3:1::7/, 'full addresses are never shown');
  const laptopId = sessions[0]?.['id'] as string;

  t.equal((await as(ctx.app, phone.access).del('/api/v1/auth/sessions/nope')).json().code, 'session_not_found');
  t.equal((await as(ctx.app, phone.access).del(`/api/v1/auth/sessions/${laptopId}`)).statusCode, 204);
  t.equal((await refresh(ctx.app, laptop.refresh)).json().code, 'token_invalid', 'its refresh token is dead');
  t.equal((await as(ctx.app, laptop.access).get('/api/v1/auth/sessions')).statusCode, 401, 'and its access token');
  t.equal((await as(ctx.app, phone.access).get('/api/v1/auth/sessions')).statusCode, 200, 'the other lives on');

  const third = await signInOn(ctx, CHROME, '198.51.100.1');
  // No body at all, as `curl -X POST` sends it: every field has a default.
  const ended = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/logout-all',
    headers: { authorization: `Bearer ${phone.access}` },
  });
  t.equal(ended.statusCode, 200, 'a request without a body is a request for the defaults');
  t.same(ended.json(), { ended: 1 }, 'every session but the current one');
  t.equal((await refresh(ctx.app, third.refresh)).statusCode, 401);
  t.equal((await refresh(ctx.app, phone.refresh)).statusCode, 200, 'the current one stays');
  const all = await signInOn(ctx, CHROME, '198.51.100.1');
  t.same((await as(ctx.app, all.access).post('/api/v1/auth/logout-all', { include_current: true })).json(), {
    ended: 2,
  });
  t.equal((await as(ctx.app, all.access).get('/api/v1/auth/sessions')).statusCode, 401, 'the caller’s too');
});

t.test('logout-all counts the sessions it ended, and still announces one whose hash expired', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const listener = new Revocations(ctx.redis, ctx.prefix, { accessTtlSeconds: 900, resyncMs: 0 });
  await listener.start();
  t.teardown(() => listener.stop());
  const old = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  // The older session's hash expired (its refresh lifetime passed) while an access token refreshed
  // just before still lives; its index entry is still there.
  await ctx.redis.del(`${ctx.prefix}:session:{${old.refresh.split('.')[0]}}`);
  const ended = await as(ctx.app, tokens.access).post('/api/v1/auth/logout-all', {});
  t.same(ended.json(), { ended: 0 }, 'nothing was live but the current session');
  const claims = JSON.parse(Buffer.from(old.access.split('.')[1] ?? '', 'base64url').toString()) as {
    sub: string;
    sid: string;
    iat: number;
    auth_time: number;
  };
  await eventually('the expired session announced ended', () => listener.isRevoked(claims), 5000, 20);
  t.pass('its access token is refused elsewhere too');
});

t.test("another user's session cannot be listed or ended", async (t) => {
  const ctx = await buildAuthTestApp(t);
  const mine = await signInOn(ctx, CHROME, '203.0.113.1');
  const theirs = await signInOn(ctx, CHROME, '203.0.113.2', '+79123450000');
  const theirId = (
    (await as(ctx.app, theirs.access).get('/api/v1/auth/sessions')).json() as { sessions: Array<{ id: string }> }
  ).sessions[0]?.id;
  t.equal((await as(ctx.app, mine.access).del(`/api/v1/auth/sessions/${theirId}`)).json().code, 'session_not_found');
  t.equal((await refresh(ctx.app, theirs.refresh)).statusCode, 200, 'their session lives on');
  t.equal((await ctx.app.inject({ method: 'GET', url: '/api/v1/auth/sessions' })).json().code, 'unauthorized');
});

t.test('ending a session is announced: another process refuses its access tokens', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const listener = new Revocations(ctx.redis, ctx.prefix, { accessTtlSeconds: 900, resyncMs: 0 });
  await listener.start();
  t.teardown(() => listener.stop());
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const claims = JSON.parse(Buffer.from(tokens.access.split('.')[1] ?? '', 'base64url').toString()) as {
    sub: string;
    sid: string;
    iat: number;
    auth_time: number;
  };
  t.ok(claims.sid && claims.auth_time, 'the access token names its session and sign-in time');
  t.notOk(listener.isRevoked(claims));
  await ctx.app.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refresh: tokens.refresh } });
  await eventually('the session to be announced ended', () => listener.isRevoked(claims), 5000, 20);
  t.pass('logout reached the other process');
});

t.test('refresh reads the user again: a blocked or deleted user’s session ends there', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const user = ctx.referral.users.get(PHONE);
  if (!user) throw new Error('no user');
  ctx.referral.blocked.add(user.id);
  t.equal((await refresh(ctx.app, tokens.refresh)).json().code, 'account_blocked');
  ctx.referral.blocked.delete(user.id);
  t.equal((await refresh(ctx.app, tokens.refresh)).statusCode, 401, 'the session ended with the refusal');
  t.equal((await sendCode(ctx.app, PHONE)).statusCode, 429, 'within the resend gap');
  ctx.clock.advance(61);
  await sendCode(ctx.app, PHONE);
  ctx.referral.blocked.add(user.id);
  const blockedSignIn = await ctx.app.inject({
    method: 'POST',
    url: '/api/v1/auth/verify',
    payload: { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) },
  });
  t.equal(blockedSignIn.json().code, 'account_blocked', 'a blocked user cannot sign in');
  ctx.referral.blocked.delete(user.id);

  const again = await signInOn(ctx, CHROME, '203.0.113.1');
  ctx.referral.users.delete(PHONE);
  t.equal((await refresh(ctx.app, again.refresh)).json().code, 'token_invalid', 'a deleted user');
});

t.test('a change waits longer than referral works on it, and with the read before it fits the gateway', async (t) => {
  for (const referralTimeoutMs of [1, 500, 1000, 1500, 2000, 5000, 8000, 60_000]) {
    const wait = changeCallTimeoutMs(referralTimeoutMs);
    t.ok(wait > referralWorkMs(referralTimeoutMs), `REFERRAL_TIMEOUT_MS=${referralTimeoutMs}: waits ${wait} ms`);
    // The gateway's limit is above REFERRAL_TIMEOUT_MS + AUTH_VERIFY_OVERHEAD_MS in production.
    t.ok(USER_READ_TIMEOUT_MS + wait <= referralTimeoutMs + AUTH_VERIFY_OVERHEAD_MS, 'inside the gateway');
  }
});

t.test('phone change: auth waits for referral as long as REFERRAL_TIMEOUT_MS lets referral work', async (t) => {
  const ctx = await buildAuthTestApp(t, { REFERRAL_TIMEOUT_MS: '8000' });
  const NEW = '+79123450009';
  const me = as(ctx.app, (await signInOn(ctx, CHROME, '203.0.113.1')).access);
  t.equal((await me.post('/api/v1/profile/phone', { phone: NEW })).statusCode, 202);
  // Longer than 5 s, and within the 7 s referral gives itself with this setting.
  ctx.referral.accountDelay.ms = 5500;
  const moved = await me.post('/api/v1/profile/phone', { phone: NEW, code: ctx.outbox.lastCodeFor(NEW) });
  t.equal(moved.statusCode, 200, moved.body);
  t.match(
    ctx.outbox.jobs.find((job) => job.kind === 'phone_changed'),
    { to: PHONE },
    'and finished the move',
  );
});

t.test('phone change: step-up, a free number, its code; others signed out, the old number told', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const NEW = '+79123450001';
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);

  t.equal((await me.post('/api/v1/profile/phone', { phone: PHONE })).json().code, 'validation_failed');
  t.equal(
    (await me.post('/api/v1/profile/phone', { phone: '8 912 345-67-89' })).json().code,
    'validation_failed',
    'in any notation',
  );
  t.equal((await me.post('/api/v1/profile/phone', { phone: 'garbage' })).json().code, 'invalid_phone');
  const sent = await me.post('/api/v1/profile/phone', { phone: NEW });
  t.equal(sent.statusCode, 202, sent.body);
  t.match(sent.json(), { phone: NEW, expires_in: Number });
  const code = ctx.outbox.lastCodeFor(NEW);
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(code.length, '0');
  t.equal((await me.post('/api/v1/profile/phone', { phone: NEW, code: wrong })).json().code, 'otp_invalid');

  const moved = await me.post('/api/v1/profile/phone', { phone: NEW, code });
  t.equal(moved.statusCode, 200, moved.body);
  t.match(moved.json(), { user: { phone: NEW } });
  t.ok(ctx.referral.users.has(NEW) && !ctx.referral.users.has(PHONE), 'referral moved the account');
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 401, 'the other session ended');
  t.equal((await me.get('/api/v1/auth/sessions')).statusCode, 200, 'the current one stays');
  const notice = ctx.outbox.jobs.find((job) => job.kind === 'phone_changed');
  t.match(notice, { to: PHONE, newEnding: '0001' }, 'the previous number hears of it');
  const rotated = await refresh(ctx.app, tokens.refresh);
  const claims = JSON.parse(Buffer.from(rotated.json().access.split('.')[1], 'base64url').toString()) as {
    phone: string;
  };
  t.equal(claims.phone, NEW, 'a refreshed token carries the new number');

  ctx.clock.advance(601);
  t.equal(
    (await me.post('/api/v1/profile/phone', { phone: '+79123450003' })).json().code,
    'step_up_required',
    'ten minutes after the sign-in, a new one is needed',
  );
});

t.test('phone change: a lost answer is finished by a retry with the same code; the old number is told', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const NEW = '+79123450001';
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  t.equal((await me.post('/api/v1/profile/phone', { phone: NEW })).statusCode, 202);
  const code = ctx.outbox.lastCodeFor(NEW);

  ctx.referral.loseAnswer.add('phone');
  const lost = await me.post('/api/v1/profile/phone', { phone: NEW, code });
  t.equal(lost.statusCode, 503, lost.body);
  t.ok(ctx.referral.users.has(NEW), 'referral moved the account all the same');
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(code.length, '0');
  t.equal(
    (await me.del('/api/v1/profile', { code: wrong })).json().code,
    'otp_invalid',
    'a deletion tried meanwhile with a wrong code (a stolen token) spoils nothing',
  );

  const retried = await me.post('/api/v1/profile/phone', { phone: NEW, code });
  t.equal(retried.statusCode, 200, retried.body);
  t.match(retried.json(), { user: { phone: NEW } });
  t.match(
    ctx.outbox.jobs.filter((job) => job.kind === 'phone_changed'),
    [{ to: PHONE, newEnding: '0001' }],
    'the number the account left is told, not the new one',
  );
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 401, 'the other session ended');
  t.equal(
    (await me.post('/api/v1/profile/phone', { phone: NEW, code })).json().code,
    'validation_failed',
    'once finished, the number is the account’s own',
  );
});

/** Both steps of a move whose answer referral loses after committing it: the move is left unfinished. */
async function moveWithAnswerLost(ctx: AuthTestContext, me: ReturnType<typeof as>, phone: string): Promise<number> {
  await me.post('/api/v1/profile/phone', { phone });
  ctx.referral.loseAnswer.add('phone');
  return (await me.post('/api/v1/profile/phone', { phone, code: ctx.outbox.lastCodeFor(phone) })).statusCode;
}

t.test('phone change: a second move while the first is unfinished still tells the first number', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const [FIRST, SECOND] = ['+79123450001', '+79123450002'];
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  t.equal(await moveWithAnswerLost(ctx, me, FIRST), 503, 'the first move committed, its answer lost');

  // The client does not retry the first move; it moves the account on to another number.
  t.equal((await me.post('/api/v1/profile/phone', { phone: SECOND })).statusCode, 202);
  const moved = await me.post('/api/v1/profile/phone', { phone: SECOND, code: ctx.outbox.lastCodeFor(SECOND) });
  t.equal(moved.statusCode, 200, moved.body);
  t.match(
    ctx.outbox.jobs.filter((job) => job.kind === 'phone_changed'),
    [
      { to: PHONE, newEnding: '0001' },
      { to: FIRST, newEnding: '0002' },
    ],
    'both numbers the account left are told',
  );
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 401, 'the other session ended');
  t.equal(await ctx.redis.zcard(`${ctx.prefix}:account:unfinished`), 0, 'nothing is left unfinished');
});

t.test('phone change: another session moving on while the first move is unfinished is ended by it', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const [FIRST, SECOND] = ['+79123450001', '+79123450002'];
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  t.equal(await moveWithAnswerLost(ctx, me, FIRST), 503, 'the first move committed, its answer lost');

  // The session the first move should have ended tries to move the account on.
  const them = as(ctx.app, other.access);
  const refused = await them.post('/api/v1/profile/phone', { phone: SECOND });
  t.equal(refused.statusCode, 401, refused.body);
  t.notOk(
    ctx.outbox.jobs.some((job) => job.to === SECOND),
    'no code was sent',
  );
  t.ok(ctx.referral.users.has(FIRST) && !ctx.referral.users.has(SECOND), 'the account stays on the first new number');
  t.match(
    ctx.outbox.jobs.filter((job) => job.kind === 'phone_changed'),
    [{ to: PHONE, newEnding: '0001' }],
    'the number it left is told',
  );
  t.equal((await refresh(ctx.app, tokens.refresh)).statusCode, 200, 'the session that moved it stays');
});

t.test('phone change: moving back to the number an unfinished move left works with the code sent', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const FIRST = '+79123450001';
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  t.equal(await moveWithAnswerLost(ctx, me, FIRST), 503, 'the first move committed, its answer lost');

  t.equal((await me.post('/api/v1/profile/phone', { phone: PHONE })).statusCode, 202);
  const back = await me.post('/api/v1/profile/phone', { phone: PHONE, code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(back.statusCode, 200, back.body);
  t.match(back.json(), { user: { phone: PHONE } });
  t.match(
    ctx.outbox.jobs.filter((job) => job.kind === 'phone_changed'),
    [{ to: PHONE, newEnding: '0001' }, { to: FIRST }],
    'each number the account left is told',
  );
});

t.test('phone change: a move nobody comes back for is finished by auth itself; the old number is told', async (t) => {
  const ctx = await buildAuthTestApp(t, {}, { unfinishedSweepMs: 50 });
  const NEW = '+79123450001';
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  await me.post('/api/v1/profile/phone', { phone: NEW });
  ctx.referral.loseAnswer.add('phone');
  t.equal((await me.post('/api/v1/profile/phone', { phone: NEW, code: ctx.outbox.lastCodeFor(NEW) })).statusCode, 503);
  const notices = () => ctx.outbox.jobs.filter((job) => job.kind === 'phone_changed');
  t.same(notices(), [], 'nothing yet: the client may still come back');

  // The one who moved it (an attacker, say) never retries.
  ctx.clock.advance(61);
  // The record goes once every step ran.
  await sweptAll(ctx, 'finish the move');
  t.match(notices(), [{ to: PHONE, newEnding: '0001' }], 'the number the account left is told');
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 401, 'the other session ended');
  t.equal((await refresh(ctx.app, tokens.refresh)).statusCode, 200, 'the one that asked stays');
});

t.test('the sweep leaves a change alone while a request could still be running it', async (t) => {
  t.equal(abandonedAfterMs(5000), 60_000, 'a minute with the default REFERRAL_TIMEOUT_MS');
  t.equal(abandonedAfterMs(60_000), 130_000, 'twice the longest request when that is longer');
});

t.test('phone change: a move that never happened leaves nothing for the sweep to do', async (t) => {
  const ctx = await buildAuthTestApp(t, {}, { unfinishedSweepMs: 50 });
  const TAKEN = '+79123450002';
  await signInOn(ctx, CHROME, '203.0.113.9', TAKEN);
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  await me.post('/api/v1/profile/phone', { phone: TAKEN });
  const refused = await me.post('/api/v1/profile/phone', { phone: TAKEN, code: ctx.outbox.lastCodeFor(TAKEN) });
  t.equal(refused.json().code, 'phone_taken');
  ctx.clock.advance(61);
  await sweptAll(ctx, 'drop the record');
  t.same(
    ctx.outbox.jobs.filter((job) => job.kind === 'phone_changed'),
    [],
    'no notice',
  );
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 200, 'no session ended');
});

t.test('phone change: step two to the account’s own number is refused and changes nothing', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  ctx.clock.advance(61);
  await sendCode(ctx.app, PHONE, {}, '203.0.113.1');
  const own = await as(ctx.app, tokens.access).post('/api/v1/profile/phone', {
    phone: PHONE,
    code: ctx.outbox.lastCodeFor(PHONE),
  });
  t.equal(own.statusCode, 400, own.body);
  t.equal(own.json().code, 'validation_failed');
  t.same(
    ctx.outbox.jobs.filter((job) => job.kind === 'phone_changed'),
    [],
    'no notice that the account moved',
  );
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 200, 'the other session lives');
});

t.test('phone change: a taken number gets a code like a free one; only its code learns it is taken', async (t) => {
  const ctx = await buildAuthTestApp(t, { SEND_CODE_IP_PER_HOUR: '2' });
  const FREE = '+79123450001';
  const TAKEN = '+79123450002';
  await signInOn(ctx, CHROME, '203.0.113.9', TAKEN);
  const owner = ctx.referral.users.get(TAKEN)?.id;
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  const sentBefore = ctx.outbox.jobs.length;

  const taken = await me.post('/api/v1/profile/phone', { phone: TAKEN });
  const free = await me.post('/api/v1/profile/phone', { phone: FREE });
  t.equal(taken.statusCode, 202, taken.body);
  t.equal(free.statusCode, 202, free.body);
  t.same({ ...taken.json(), phone: FREE }, free.json(), 'the same answer but for the number');
  t.match(
    ctx.outbox.jobs.slice(sentBefore),
    [
      { kind: 'otp', to: TAKEN },
      { kind: 'otp', to: FREE },
    ],
    'a code went to each',
  );
  const probe = await me.post('/api/v1/profile/phone', { phone: '+79123450003' });
  t.match(probe.json(), { status: 429, code: 'rate_limited' }, 'both counted against the address, as send-codes');

  const refused = await me.post('/api/v1/profile/phone', { phone: TAKEN, code: ctx.outbox.lastCodeFor(TAKEN) });
  t.equal(refused.statusCode, 409, refused.body);
  t.equal(refused.json().code, 'phone_taken', 'step two, with the number’s code, says it is taken');
  t.equal(ctx.referral.users.get(TAKEN)?.id, owner, 'the number stays with its account');
  t.ok(ctx.referral.users.has(PHONE), 'and the caller keeps theirs');
});

t.test('phone change: a number codes are not sent to is refused as send-code refuses it', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const TOLL_FREE = '+78001234567';
  const direct = await sendCode(ctx.app, TOLL_FREE);
  const change = await as(ctx.app, tokens.access).post('/api/v1/profile/phone', { phone: TOLL_FREE });
  t.equal(change.statusCode, 422, change.body);
  t.match(change.json(), { code: 'destination_refused', number_type: 'toll_free' });
  t.same(change.json(), direct.json(), 'the same problem as send-code');
  t.same(
    ctx.outbox.jobs.filter((job) => job.to === TOLL_FREE),
    [],
    'nothing sent',
  );
});

t.test('deletion: confirmed with a fresh code; sessions end; auth forgets the number', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  const sub = ctx.referral.users.get(PHONE)?.id;
  t.equal((await me.del('/api/v1/profile', {})).json().code, 'validation_failed', 'the code is required');
  t.equal((await me.del('/api/v1/profile', { code: '000000' })).json().code, 'otp_expired', 'no code was sent');
  ctx.clock.advance(61);
  await sendCode(ctx.app, PHONE);
  const deleted = await me.del('/api/v1/profile', { code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(deleted.statusCode, 204, deleted.body);
  t.notOk(ctx.referral.users.has(PHONE), 'referral deleted the account');
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 401, 'every session ended');
  t.equal((await refresh(ctx.app, tokens.refresh)).statusCode, 401, 'the current one too');
  t.same(ctx.outbox.forgotten, [sub], 'a pending inviter notice is dropped');
  const keys = await ctx.redis.keys(`${ctx.prefix}:*`);
  t.same(
    keys.filter((key) => key.includes(PHONE)),
    [],
    'no Redis key of this prefix names the number any more',
  );
  const values = await Promise.all(
    keys.map(async (key) =>
      (await ctx.redis.type(key)) === 'hash' ? JSON.stringify(await ctx.redis.hgetall(key)) : '',
    ),
  );
  t.notOk(
    values.some((value) => value.includes(PHONE)),
    'nor any session hash',
  );
});

t.test('deletion: a lost answer is finished by a retry; sessions end and the number is forgotten', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const me = as(ctx.app, tokens.access);
  ctx.clock.advance(61);
  await sendCode(ctx.app, PHONE);
  const code = ctx.outbox.lastCodeFor(PHONE);
  ctx.referral.loseAnswer.add('delete');
  const lost = await me.del('/api/v1/profile', { code });
  t.equal(lost.statusCode, 503, lost.body);
  t.notOk(ctx.referral.users.has(PHONE), 'referral erased the account all the same');

  const retried = await me.del('/api/v1/profile', { code });
  t.equal(retried.statusCode, 204, retried.body);
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 401, 'every session ended');
  const keys = await ctx.redis.keys(`${ctx.prefix}:*`);
  t.same(
    keys.filter((key) => key.includes(PHONE)),
    [],
    'no Redis key of this prefix names the number any more',
  );
  const values = await Promise.all(
    keys.map(async (key) => ((await ctx.redis.type(key)) === 'string' ? await ctx.redis.get(key) : '')),
  );
  t.notOk(
    values.some((value) => value?.includes(PHONE)),
    'nor any value: the record of the unfinished deletion went too',
  );
});

t.test('deletion: one nobody comes back for is finished by auth itself', async (t) => {
  const ctx = await buildAuthTestApp(t, {}, { unfinishedSweepMs: 50 });
  const other = await signInOn(ctx, 'MyApp/2.1', '203.0.113.1');
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  ctx.clock.advance(61);
  await sendCode(ctx.app, PHONE);
  ctx.referral.loseAnswer.add('delete');
  const lost = await as(ctx.app, tokens.access).del('/api/v1/profile', { code: ctx.outbox.lastCodeFor(PHONE) });
  t.equal(lost.statusCode, 503, lost.body);
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 401, 'refresh already refuses a deleted user');
  ctx.clock.advance(61);
  await sweptAll(ctx, 'finish the deletion');
  const keys = await ctx.redis.keys(`${ctx.prefix}:*`);
  t.same(
    keys.filter((key) => key.includes(PHONE)),
    [],
    'no Redis key of this prefix names the number any more',
  );
  t.equal(
    (await as(ctx.app, tokens.access).get('/api/v1/auth/sessions')).statusCode,
    401,
    'every session ended, the one that asked too',
  );
});

t.test('export: profile and sessions in one document', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  const exported = await as(ctx.app, tokens.access).get('/api/v1/profile/export');
  t.equal(exported.statusCode, 200, exported.body);
  t.match(exported.json(), {
    exported_at: String,
    profile: { phone: PHONE },
    activation: null,
    invitees: [],
    sessions: [{ current: true, device: 'Chrome 120 on Android 14' }],
  });
});

t.test('export by a session whose account referral has already erased: 401, not 404', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const tokens = await signInOn(ctx, CHROME, '203.0.113.1');
  // A deletion committed in referral whose last steps in auth (ending the sessions) are still ahead.
  ctx.referral.users.delete(PHONE);
  const exported = await as(ctx.app, tokens.access).get('/api/v1/profile/export');
  t.equal(exported.statusCode, 401, exported.body);
  t.equal(exported.json().code, 'unauthorized');
});

t.test('a user revoked elsewhere (an operator’s block): auth ends every session of the user', async (t) => {
  const ctx = await buildAuthTestApp(t);
  const first = await signInOn(ctx, CHROME, '203.0.113.1');
  const second = await signInOn(ctx, 'MyApp/2.1', '203.0.113.2');
  const other = await signInOn(ctx, CHROME, '203.0.113.3', '+79123450009');
  const sub = ctx.referral.users.get(PHONE)?.id ?? '';
  // What referral publishes when an operator blocks the user.
  const referral = new Revocations(ctx.redis, ctx.prefix, { accessTtlSeconds: 900, resyncMs: 0 });
  await ctx.app.ready();
  await eventually(
    'auth to subscribe',
    async () => (await ctx.redis.pubsub('NUMSUB', `${ctx.prefix}:revocations`))[1] === 1,
    5000,
    20,
  );
  await referral.publish([{ sub, before: Math.floor(Date.now() / 1000) }]);
  await eventually(
    'the sessions to end',
    async () => (await as(ctx.app, first.access).get('/api/v1/auth/sessions')).statusCode === 401,
    5000,
    20,
  );
  t.equal((await refresh(ctx.app, first.refresh)).statusCode, 401, 'the first session ended');
  t.equal((await refresh(ctx.app, second.refresh)).statusCode, 401, 'the second too');
  t.equal((await refresh(ctx.app, other.refresh)).statusCode, 200, 'another user’s session lives on');
});
