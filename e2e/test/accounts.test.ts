// An account over its life through the real processes: devices and their sessions, a phone change,
// a deletion that leaves no trace of the number, through the gateway as a client sees them.
import t from 'tap';
import pg from 'pg';
import { Redis } from 'ioredis';
import { type JsonObject, TestStack } from '@refstack/shared/testing';

const stack = await TestStack.system(t, { OTP_RESEND_SECONDS: '0', INVITE_NOTICE_WINDOW_SECONDS: '0' });

const bearer = (access: string) => ({ authorization: `Bearer ${access}` });
const get = (path: string, access: string) => stack.request('GET', path, { headers: bearer(access) });

/** A sign-in from a device with its own User-Agent; the session's tokens. */
async function onDevice(phone: string, userAgent: string): Promise<{ access: string; refresh: string }> {
  const since = stack.sms.length;
  const sent = await stack.post('/api/v1/auth/send-code', { phone });
  if (sent.status !== 200) throw new Error(`send-code ${sent.status} ${sent.text}`);
  const code = await stack.nextLoginCode(phone, since);
  const res = await stack.request<{ tokens: { access: string; refresh: string } }>('POST', '/api/v1/auth/verify', {
    body: { phone, code },
    headers: { 'user-agent': userAgent },
  });
  if (res.status !== 200) throw new Error(`verify ${res.status} ${res.text}`);
  return res.json.tokens;
}

/** How long until `access` is refused at GET /profile (referral, through the gateway). */
async function refusedWithin(access: string, what: string): Promise<number> {
  const started = Date.now();
  await stack.waitFor(async () => (await get('/api/v1/profile', access)).status === 401, 5000, what);
  return Date.now() - started;
}

t.test('two devices: list, end one (its token refused within 5 s), then every other', async (t) => {
  const phone = '+79121110001';
  const pixel = await onDevice(phone, 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120.0 Mobile');
  const iphone = await onDevice(phone, 'MyApp/2.1 (iPhone; iOS 17.1)');
  const listed = await get('/api/v1/auth/sessions', pixel.access);
  t.equal(listed.status, 200, listed.text);
  const sessions = (listed.json as unknown as { sessions: Array<{ id: string; device: string; current: boolean }> })
    .sessions;
  t.equal(sessions.length, 2);
  t.match(sessions, [
    { device: /MyApp/, current: false },
    { device: /Chrome 120 on Android/, current: true },
  ]);

  t.equal((await get('/api/v1/profile', iphone.access)).status, 200, 'the other device reads its profile');
  const ended = await stack.request('DELETE', `/api/v1/auth/sessions/${sessions[0]?.id}`, {
    headers: bearer(pixel.access),
  });
  t.equal(ended.status, 204);
  const ms = await refusedWithin(iphone.access, 'the ended session’s access token to be refused at referral');
  t.comment(`the ended session's access token was refused at GET /profile ${ms} ms later`);
  t.equal((await get('/api/v1/profile', pixel.access)).status, 200, 'the device that ended it still works');
  t.equal((await stack.post('/api/v1/auth/refresh', { refresh: iphone.refresh })).status, 401);

  const third = await onDevice(phone, 'curl/8.5');
  const all = await stack.request('POST', '/api/v1/auth/logout-all', { headers: bearer(pixel.access), body: {} });
  t.same(all.json, { ended: 1 });
  await refusedWithin(third.access, 'logout-all to reach the third device');
  t.equal((await get('/api/v1/profile', pixel.access)).status, 200, 'the current session stays');
});

t.test('phone change: the account moves, the inviter sees the new number, the old number is told', async (t) => {
  const inviter = await stack.signIn('+79121110010');
  const old = '+79121110011';
  const moved = '+79121110012';
  const me = await onDevice(old, 'curl/8.5');
  const other = await onDevice(old, 'MyApp/2.1');
  const code = (inviter.json.user as JsonObject)['invite_code'] as string;
  const activated = await stack.request('PUT', '/api/v1/profile/invite', {
    headers: bearer(me.access),
    body: { invite_code: code },
  });
  t.equal(activated.status, 200);

  const since = stack.sms.length;
  const asked = await stack.request('POST', '/api/v1/profile/phone', {
    headers: bearer(me.access),
    body: { phone: moved },
  });
  t.equal(asked.status, 202, asked.text);
  const newCode = await stack.nextLoginCode(moved, since);
  const done = await stack.request<{ user: JsonObject }>('POST', '/api/v1/profile/phone', {
    headers: bearer(me.access),
    body: { phone: moved, code: newCode },
  });
  t.equal(done.status, 200, done.text);
  t.equal(done.json.user['phone'], moved);
  t.match(await stack.nextSms(old, /ending in 0012|…0012|\*0012|0012/, since), /0012/, 'the old number’s notice');
  await refusedWithin(other.access, 'the other session to end');
  const inviterProfile = await get('/api/v1/profile', inviter.json.tokens.access as string);
  t.match(inviterProfile.json, { invited_count: 1, invited_users: [moved] }, 'the inviter’s list shows the new number');
  t.equal((await stack.signIn(moved)).json.created, false, 'the new number signs in to the same account');
});

t.test('deletion: a tombstone in the graph, no trace of the number, the number free again', async (t) => {
  const inviter = await stack.signIn('+79121110020');
  const doomed = '+79121110021';
  const victim = await onDevice(doomed, 'curl/8.5');
  const inviterCode = (inviter.json.user as JsonObject)['invite_code'] as string;
  await stack.request('PUT', '/api/v1/profile/invite', {
    headers: bearer(victim.access),
    body: { invite_code: inviterCode },
  });
  const ownCode = ((await get('/api/v1/profile', victim.access)).json['invite_code'] as string) ?? '';
  const invitee = await stack.signIn('+79121110022', { invite_code: ownCode });
  t.equal(invitee.status, 200);
  const oldId = (await get('/api/v1/profile', victim.access)).json['id'];

  const since = stack.sms.length;
  await stack.post('/api/v1/auth/send-code', { phone: doomed });
  const code = await stack.nextLoginCode(doomed, since);
  const deleted = await stack.request('DELETE', '/api/v1/profile', { headers: bearer(victim.access), body: { code } });
  t.equal(deleted.status, 204, deleted.text);
  await refusedWithin(victim.access, 'the deleted account’s token to be refused');

  const inviterProfile = await get('/api/v1/profile', inviter.json.tokens.access as string);
  t.match(inviterProfile.json, { invited_count: 1, invited_users: [null] }, 'the inviter keeps its count; no phone');
  const page = await get('/api/v1/profile/invited', inviter.json.tokens.access as string);
  t.match(page.json, { items: [{ id: oldId, phone: null }], total: 1 });
  t.match((await get('/api/v1/profile', invitee.json.tokens.access as string)).json, {
    activated_invite_code: ownCode,
  });
  const late = await stack.signIn('+79121110023');
  const refused = await stack.request('PUT', '/api/v1/profile/invite', {
    headers: bearer(late.json.tokens.access as string),
    body: { invite_code: ownCode },
  });
  t.equal(refused.json['code'], 'invite_not_found', 'the deleted account’s code cannot be activated');

  // No trace of the number: not in any row, nor in any Redis key or value of the stack.
  const seen = [
    inviterProfile.text,
    page.text,
    (await get('/api/v1/profile/export', inviter.json.tokens.access as string)).text,
  ];
  t.notOk(
    seen.some((text) => text.includes(doomed)),
    'no response names it',
  );
  const db = new pg.Client({ connectionString: stack.stores.databaseUrl });
  await db.connect();
  t.teardown(() => db.end());
  const rows = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM users u WHERE u::text LIKE $1`, [
    `%${doomed}%`,
  ]);
  t.equal(rows.rows[0]?.n, 0, 'no row holds it');
  const redis = new Redis(stack.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
  t.teardown(() => redis.quit());
  const keys = await redis.keys(`${stack.stores.redisPrefix}*`);
  t.same(
    keys.filter((key) => key.includes(doomed)),
    [],
    'no Redis key names it',
  );
  const holding: string[] = [];
  for (const key of keys) {
    const type = await redis.type(key);
    const value =
      type === 'string'
        ? await redis.get(key)
        : type === 'hash'
          ? JSON.stringify(await redis.hgetall(key))
          : type === 'zset'
            ? JSON.stringify(await redis.zrange(key, '0', '-1'))
            : type === 'list'
              ? JSON.stringify(await redis.lrange(key, 0, -1))
              : type === 'set'
                ? JSON.stringify(await redis.smembers(key))
                : '';
    if (value?.includes(doomed)) holding.push(key);
  }
  t.same(holding, [], 'no Redis value holds it');

  const again = await stack.signIn(doomed);
  t.equal(again.json.created, true, 'the number signs up again');
  t.not((again.json.user as JsonObject)['id'], oldId, 'as a new user');
  t.match(again.json.user, { invited_count: 0, invited_users: [], activated_invite_code: null });
  t.not((again.json.user as JsonObject)['invite_code'], ownCode);
});
