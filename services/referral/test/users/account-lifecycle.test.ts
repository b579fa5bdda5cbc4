import t, { type Test } from 'tap';
import { sql } from 'kysely';
import { Value } from 'typebox/value';
import {
  ChangePhoneResultSchema,
  DeleteResultSchema,
  INTERNAL_DELETE_PATH,
  INTERNAL_EXPORT_PATH,
  INTERNAL_PHONE_PATH,
  INTERNAL_USER_PATH,
  InternalUserSchema,
  internalPath,
  ReferralExportSchema,
} from '@refstack/shared/contracts';
import { testConfig } from '@refstack/shared/testing';
import { STALE_INVITEE_LISTS_SQL } from '../../src/invites/invite-repository.js';
import { activationDeadlines } from '../../src/invites/invite-service.js';
import { inviteesForExport } from '../../src/users/user-repository.js';
import { holdInviterLocks, lockObserver } from '../advisory-locks.js';
import {
  activate,
  as,
  buildReferralTestApp,
  createUser,
  eventually,
  internal,
  nextPhone,
  signInRaw,
  type ReferralTestContext,
} from '../referral-test-app.js';

const changePhone = (ctx: ReferralTestContext, id: string, phone: string) =>
  internal(ctx.app, 'POST', internalPath(INTERNAL_PHONE_PATH, id), { phone });
const deleteAccount = (ctx: ReferralTestContext, id: string) =>
  internal(ctx.app, 'POST', internalPath(INTERNAL_DELETE_PATH, id));
const exportAccount = (ctx: ReferralTestContext, id: string) =>
  internal(ctx.app, 'GET', internalPath(INTERNAL_EXPORT_PATH, id));
const internalUser = (ctx: ReferralTestContext, id: string) =>
  internal(ctx.app, 'GET', internalPath(INTERNAL_USER_PATH, id));
const phoneTaken = async (ctx: ReferralTestContext, phone: string) =>
  (await ctx.db.selectFrom('users').select('id').where('phone', '=', phone).executeTakeFirst()) !== undefined;
const profile = async (ctx: ReferralTestContext, user: { token: string }) =>
  (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) })).json();
const row = (ctx: ReferralTestContext, id: string) =>
  ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

async function staleLists(ctx: ReferralTestContext): Promise<number | undefined> {
  return (await sql<{ n: number }>`${sql.raw(STALE_INVITEE_LISTS_SQL)}`.execute(ctx.db)).rows[0]?.n;
}

/** Rows holding this phone anywhere: its own column, a name, an email, an embedded invitee list. */
async function rowsNaming(ctx: ReferralTestContext, phone: string): Promise<number | undefined> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM users
    WHERE phone = ${phone} OR first_name = ${phone} OR last_name = ${phone} OR email = ${phone}
      OR invited_users::jsonb ? ${phone}
  `.execute(ctx.db);
  return rows[0]?.n;
}

function problem(t: Test, res: { statusCode: number; json(): { code?: unknown } }, status: number, code: string) {
  t.equal(res.statusCode, status, code);
  t.equal(res.json().code, code);
}

t.test('the internal user: active, blocked, deleted, unknown; every account route needs the credential', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  await ctx.db.updateTable('users').set({ is_admin: true }).where('id', '=', user.id).execute();
  const active = await internalUser(ctx, user.id);
  t.equal(active.statusCode, 200);
  t.ok(Value.Check(InternalUserSchema, active.json()));
  t.same(active.json(), { id: user.id, phone: user.phone, roles: ['admin'], status: 'active', revoked_before: null });

  await ctx.db.updateTable('users').set({ blocked_at: new Date() }).where('id', '=', user.id).execute();
  t.match((await internalUser(ctx, user.id)).json(), { status: 'blocked', phone: user.phone });
  problem(t, await deleteAccount(ctx, user.id), 403, 'account_blocked');
  await ctx.db.updateTable('users').set({ blocked_at: null }).where('id', '=', user.id).execute();
  t.equal((await deleteAccount(ctx, user.id)).statusCode, 200, 'unblocked, it can be deleted');
  t.same((await internalUser(ctx, user.id)).json(), {
    id: user.id,
    phone: null,
    roles: [],
    status: 'deleted',
    revoked_before: null,
  });

  for (const id of ['999999', 'abc', '0', '9223372036854775808'])
    problem(t, await internalUser(ctx, id), 404, 'not_found');

  const other = await createUser(ctx);
  for (const token of [null, 'wrong']) {
    for (const res of [
      await internal(ctx.app, 'GET', internalPath(INTERNAL_USER_PATH, other.id), undefined, token),
      await internal(ctx.app, 'POST', internalPath(INTERNAL_PHONE_PATH, other.id), { phone: nextPhone() }, token),
      await internal(ctx.app, 'POST', internalPath(INTERNAL_DELETE_PATH, other.id), undefined, token),
      await internal(ctx.app, 'GET', internalPath(INTERNAL_EXPORT_PATH, other.id), undefined, token),
    ])
      problem(t, res, 401, 'unauthorized');
  }
  t.equal((await row(ctx, other.id)).phone, other.phone, 'nothing was changed without the credential');
});

t.test("a phone change keeps the account and its relations; the inviter's list shows the new number", async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [inviter, user, invitee, sibling] = [
    await createUser(ctx),
    await createUser(ctx),
    await createUser(ctx),
    await createUser(ctx),
  ];
  t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
  t.equal((await activate(ctx.app, invitee, user.invite_code)).statusCode, 200);
  t.equal((await activate(ctx.app, sibling, inviter.invite_code)).statusCode, 200);
  t.same((await profile(ctx, inviter)).invited_users, [sibling.phone, user.phone]);

  const fresh = nextPhone();
  const notation = `8 ${fresh.slice(2, 5)} ${fresh.slice(5, 8)}-${fresh.slice(8, 10)}-${fresh.slice(10)}`;
  const changed = await changePhone(ctx, user.id, notation);
  t.equal(changed.statusCode, 200, changed.body);
  t.ok(Value.Check(ChangePhoneResultSchema, changed.json()));
  t.same(changed.json(), {
    user: { ...(await profile(ctx, user)), phone: fresh },
    old_phone: user.phone,
  });
  t.match(changed.json().user, {
    id: user.id,
    phone: fresh,
    invite_code: user.invite_code,
    activated_invite_code: inviter.invite_code,
    invited_users: [invitee.phone],
    invited_count: 1,
  });
  t.match(await profile(ctx, inviter), { invited_users: [sibling.phone, fresh], invited_count: 2 }, 'the new number');
  t.same(
    (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited', headers: as(inviter) }))
      .json()
      .items.map((i: { phone: string }) => i.phone),
    [sibling.phone, fresh],
  );
  t.equal(await staleLists(ctx), 0);
  t.equal(await rowsNaming(ctx, user.phone), 0, 'the old number is nowhere');
  t.same(ctx.outbox.forgotten, [user.id], 'a notice pending for the old number is dropped');
  t.equal(await phoneTaken(ctx, fresh), true);
  t.equal(await phoneTaken(ctx, user.phone), false, 'the old number is free');
  const reused = await signInRaw(ctx.app, { phone: user.phone });
  t.match(reused.json(), { created: true }, 'and signing in with it makes a new account');
  t.not(reused.json().user.id, user.id);

  const before = await row(ctx, user.id);
  const same = await changePhone(ctx, user.id, fresh);
  t.equal(same.statusCode, 200, 'the number the account has: 200');
  t.same(same.json().old_phone, fresh);
  t.same(await row(ctx, user.id), before, 'and nothing changed');
  t.same(ctx.outbox.forgotten, [user.id], 'no notice dropped for it');

  problem(t, await changePhone(ctx, user.id, sibling.phone), 409, 'phone_taken');
  t.equal((await row(ctx, user.id)).phone, fresh, 'a taken number changes nothing');
  problem(t, await changePhone(ctx, user.id, '+7 495 123 45 67'), 400, 'invalid_phone');
  problem(t, await changePhone(ctx, '999999', nextPhone()), 404, 'not_found');
  problem(t, await changePhone(ctx, 'abc', nextPhone()), 404, 'not_found');
  await ctx.db.updateTable('users').set({ blocked_at: new Date() }).where('id', '=', sibling.id).execute();
  problem(t, await changePhone(ctx, sibling.id, nextPhone()), 403, 'account_blocked');
  t.equal((await deleteAccount(ctx, invitee.id)).statusCode, 200);
  problem(t, await changePhone(ctx, invitee.id, nextPhone()), 404, 'not_found');

  t.equal(await phoneTaken(ctx, sibling.phone), true, 'a blocked account keeps its number');
});

// The phone's unique constraint decides; each round the winner's inviter list is rewritten too.
t.test('two users racing for one new phone: exactly one wins, the other hears phone_taken', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  for (let round = 0; round < 10; round += 1) {
    const [a, b] = [await createUser(ctx), await createUser(ctx)];
    await activate(ctx.app, a, inviter.invite_code);
    const phone = nextPhone();
    const answers = await Promise.all([changePhone(ctx, a.id, phone), changePhone(ctx, b.id, phone)]);
    const outcome = answers.map((r) => `${r.statusCode}:${r.json().code ?? ''}`).sort();
    if (outcome.join(',') !== '200:,409:phone_taken') t.fail(`round ${round}: ${outcome.join(',')}`);
    const holders = await ctx.db.selectFrom('users').select('id').where('phone', '=', phone).execute();
    const winner = answers[0]?.statusCode === 200 ? a : b;
    t.same(
      holders.map((h) => h.id),
      [winner.id],
      `round ${round}: the winner alone has it`,
    );
  }
  t.equal(await staleLists(ctx), 0, "the inviter's list is exact");
});

t.test('a deleted account is an anonymous tombstone: counted, null in lists, activations kept', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [inviter, user, invitee, later] = [
    await createUser(ctx),
    await createUser(ctx),
    await createUser(ctx),
    await createUser(ctx),
  ];
  t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
  t.equal((await activate(ctx.app, invitee, user.invite_code)).statusCode, 200);
  await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: as(user),
    payload: { first_name: 'Anna', last_name: 'Petrova', email: 'anna@example.com' },
  });
  await ctx.db.updateTable('users').set({ is_admin: true }).where('id', '=', user.id).execute();
  const activatedAt = (await row(ctx, user.id)).activated_at;

  ctx.outbox.failing = true;
  const deleted = await deleteAccount(ctx, user.id);
  ctx.outbox.failing = false;
  t.equal(deleted.statusCode, 200, 'deleted, whatever the bus does');
  t.ok(
    ctx.logs.lines.some((l) => l['msg'] === 'pending inviter notice not dropped' && l['inviter_id'] === user.id),
    'a notice that could not be dropped is logged',
  );
  t.ok(Value.Check(DeleteResultSchema, deleted.json()));
  t.same(deleted.json(), { old_phone: user.phone });
  t.match(await row(ctx, user.id), {
    phone: null,
    first_name: null,
    last_name: null,
    email: null,
    is_admin: false,
    deleted_at: Date,
    invite_code: user.invite_code,
    invited_by_id: inviter.id,
    activated_invite_code: inviter.invite_code,
    activated_at: activatedAt,
    invited_count: 1,
  });
  t.equal(await rowsNaming(ctx, user.phone), 0, 'its phone is nowhere');
  t.equal(await staleLists(ctx), 0);

  t.match(await profile(ctx, inviter), { invited_users: [null], invited_count: 1 }, 'null in its place, still counted');
  const page = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited', headers: as(inviter) })).json();
  t.same(page, {
    items: [{ id: user.id, phone: null, activated_at: activatedAt?.toISOString() }],
    next_cursor: null,
    total: 1,
  });
  t.match(await row(ctx, invitee.id), { invited_by_id: user.id, activated_invite_code: user.invite_code });
  t.equal((await profile(ctx, invitee)).activated_invite_code, user.invite_code, 'its invitee keeps the activation');
  t.equal((await activate(ctx.app, invitee, user.invite_code)).statusCode, 200, 'and repeating it is still a repeat');

  // The seeds' clients read invitees as phones only.
  const details = (
    await ctx.app.inject({ method: 'GET', url: '/api/v1/users/current_user', headers: as(inviter) })
  ).json();
  t.same(details.invited, [], 'the second seed leaves it out');
  const seed1 = (await ctx.app.inject({ method: 'GET', url: '/compat/seed1/profile', headers: as(inviter) })).json();
  t.match(seed1, { invited_users: [], invited_count: 1 }, 'the first seed too, and still counts it');

  for (const [method, url] of [
    ['GET', '/api/v1/profile'],
    ['PATCH', '/api/v1/profile'],
    ['GET', '/api/v1/profile/invited'],
    ['GET', '/api/v1/users'],
    ['GET', `/api/v1/users/${inviter.id}`],
    ['GET', '/api/v1/users/current_user'],
    ['GET', '/compat/seed1/profile'],
  ] as const) {
    const res = await ctx.app.inject({
      method,
      url,
      headers: as(user),
      ...(method === 'PATCH' ? { payload: {} } : {}),
    });
    problem(t, res, 401, 'unauthorized');
  }
  problem(t, await activate(ctx.app, user, later.invite_code), 401, 'unauthorized');
  const renamed = await ctx.app.inject({
    method: 'PATCH',
    url: '/api/v1/profile',
    headers: as(user),
    payload: { first_name: 'Back' },
  });
  problem(t, renamed, 401, 'unauthorized');
  t.equal((await row(ctx, user.id)).first_name, null, 'no name comes back onto a tombstone');

  problem(t, await deleteAccount(ctx, user.id), 404, 'not_found');
  problem(t, await exportAccount(ctx, user.id), 404, 'not_found');
  problem(t, await deleteAccount(ctx, '999999'), 404, 'not_found');
  problem(t, await deleteAccount(ctx, 'abc'), 404, 'not_found');
  problem(
    t,
    await ctx.app.inject({ method: 'GET', url: `/api/v1/users/${user.id}`, headers: as(inviter) }),
    404,
    'not_found',
  );

  problem(t, await activate(ctx.app, later, user.invite_code), 404, 'invite_not_found');
  const phone = nextPhone();
  problem(t, await signInRaw(ctx.app, { phone, invite_code: user.invite_code }), 404, 'invite_not_found');
  t.notOk(await ctx.db.selectFrom('users').select('id').where('phone', '=', phone).executeTakeFirst(), 'nobody made');

  const again = await signInRaw(ctx.app, { phone: user.phone });
  t.equal(again.statusCode, 200);
  t.match(again.json(), {
    created: true,
    user: { phone: user.phone, activated_invite_code: null, invited_users: [], invited_count: 0, first_name: null },
  });
  t.not(again.json().user.id, user.id, 'a new id');
  t.not(again.json().user.invite_code, user.invite_code, 'a new invite code');
  t.match(await profile(ctx, inviter), { invited_users: [null], invited_count: 1 }, 'not in its old place');
});

// As after the database's clock stepped back: the newest invitee's time is ahead of the clock.
t.test('a deletion after the clock stepped back is still later than every activation of the code', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [owner, invitee] = [await createUser(ctx), await createUser(ctx)];
  t.equal((await activate(ctx.app, invitee, owner.invite_code)).statusCode, 200);
  await sql`UPDATE users SET activated_at = now() + interval '1 hour' WHERE id = ${invitee.id}`.execute(ctx.db);
  t.equal((await deleteAccount(ctx, owner.id)).statusCode, 200);
  const { rows } = await sql<{ later: boolean }>`
    SELECT o.deleted_at > i.activated_at AS later FROM users o, users i
    WHERE o.id = ${owner.id} AND i.id = ${invitee.id}
  `.execute(ctx.db);
  t.same(rows, [{ later: true }], 'deleted after its newest activation');
});

t.test('the export: profile, own activation, invitees by id and time only', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [inviter, user, first, second] = [
    await createUser(ctx),
    await createUser(ctx),
    await createUser(ctx),
    await createUser(ctx),
  ];
  t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
  t.equal((await activate(ctx.app, first, user.invite_code)).statusCode, 200);
  t.equal((await activate(ctx.app, second, user.invite_code)).statusCode, 200);
  t.equal((await deleteAccount(ctx, first.id)).statusCode, 200);
  t.same(ctx.outbox.forgotten, [first.id], "the deleted user's pending notice is dropped");
  await ctx.db.updateTable('users').set({ blocked_at: new Date() }).where('id', '=', user.id).execute();

  const res = await exportAccount(ctx, user.id);
  t.equal(res.statusCode, 200, 'a blocked account exports too');
  const body = res.json();
  t.ok(Value.Check(ReferralExportSchema, body));
  const stored = await row(ctx, user.id);
  const at = async (id: string) => (await row(ctx, id)).activated_at?.toISOString();
  t.same(body, {
    profile: { ...body.profile, id: user.id, phone: user.phone, invited_users: [second.phone, null], invited_count: 2 },
    activation: {
      invite_code: inviter.invite_code,
      inviter_id: inviter.id,
      activated_at: stored.activated_at?.toISOString(),
    },
    invitees: [
      { id: second.id, activated_at: await at(second.id) },
      { id: first.id, activated_at: await at(first.id) },
    ],
    is_admin: false,
    updated_at: stored.updated_at.toISOString(),
  });
  for (const chunk of [1, 2, 3])
    t.same(
      await inviteesForExport(ctx.db, user.id, chunk),
      body.invitees,
      `read ${chunk} at a time, the same list: each chunk starts where the last ended`,
    );
  const withoutProfile = JSON.stringify({ ...body, profile: undefined });
  t.notMatch(withoutProfile, second.phone.slice(1), "no invitee's phone outside the profile's own list");
  t.equal((await exportAccount(ctx, inviter.id)).json().activation, null, 'null until a code is activated');
  problem(t, await exportAccount(ctx, '999999'), 404, 'not_found');
});

// A code that cannot be activated is refused from the plain read, as an unknown one is: it must not
// queue behind its owner's lock, which another activation or the deletion itself may hold.
t.test("a blocked or deleted owner's code is refused without waiting for the owner's lock", async (t) => {
  const ctx = await buildReferralTestApp(t);
  const [blocked, deleted, user] = [await createUser(ctx), await createUser(ctx), await createUser(ctx)];
  await ctx.db.updateTable('users').set({ blocked_at: new Date() }).where('id', '=', blocked.id).execute();
  t.equal((await deleteAccount(ctx, deleted.id)).statusCode, 200);
  await holdInviterLocks(t, ctx.databaseUrl, [blocked.id, deleted.id]);
  const started = Date.now();
  for (const owner of [blocked, deleted]) {
    problem(t, await activate(ctx.app, user, owner.invite_code), 404, 'invite_not_found');
    problem(
      t,
      await signInRaw(ctx.app, { phone: nextPhone(), invite_code: owner.invite_code }),
      404,
      'invite_not_found',
    );
  }
  const took = Date.now() - started;
  t.ok(took < activationDeadlines(testConfig()).signInMs, `none waited for a lock (${took} ms)`);
});

// Auth reads the account's status before it asks for the deletion; a block landing after that read
// must still stop it, or a blocked user could erase the account and sign up afresh, unblocked.
t.test('a blocked account is not deleted, also when the block lands after the first read', async (t) => {
  // Room for the deletion to wait on the held lock while the test blocks the account.
  const ctx = await buildReferralTestApp(
    t,
    { REFERRAL_TIMEOUT_MS: '30000' },
    { timeouts: { statementMs: 20_000, lockMs: 20_000, idleInTransactionMs: 20_000, queryMs: 25_000 } },
  );
  const [inviter, user] = [await createUser(ctx), await createUser(ctx)];
  t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
  const stored = () => ctx.db.selectFrom('users').selectAll().where('id', '=', user.id).executeTakeFirstOrThrow();

  await ctx.db.updateTable('users').set({ blocked_at: new Date() }).where('id', '=', user.id).execute();
  const blocked = await stored();
  problem(t, await deleteAccount(ctx, user.id), 403, 'account_blocked');
  t.same(await stored(), blocked, 'nothing erased');

  // Unblocked again; the deletion reads it so, then queues on the account's own lock (held here),
  // and the block commits while it waits.
  await ctx.db.updateTable('users').set({ blocked_at: null }).where('id', '=', user.id).execute();
  const holder = await holdInviterLocks(t, ctx.databaseUrl, [user.id]);
  const serviceAdvisoryLocks = await lockObserver(t, ctx.databaseUrl);
  const pending = deleteAccount(ctx, user.id);
  await eventually(
    'the deletion queues on the account lock',
    async () => (await serviceAdvisoryLocks()).some((l) => !l.granted),
    10_000,
  );
  await ctx.db.updateTable('users').set({ blocked_at: new Date() }).where('id', '=', user.id).execute();
  await holder.release();
  problem(t, await pending, 403, 'account_blocked');

  const after = await stored();
  t.match(after, { phone: user.phone, deleted_at: null, invited_by_id: inviter.id }, 'nothing erased');
  t.not(after.blocked_at, null, 'still blocked');
  const inviterRow = await ctx.db
    .selectFrom('users')
    .select(['invited_count', 'invited_users'])
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.same(inviterRow, { invited_count: 1, invited_users: [user.phone] }, "the inviter's list untouched");
  t.same(ctx.outbox.forgotten, [], 'no pending notice dropped');
});

// The activation has committed and read its inviter's phone; the inviter's deletion or phone change
// lands before the notice is counted, and forgets what was pending before the late one arrives.
t.test(
  "a notice queued after its inviter's account was deleted or moved is dropped, not sent to the old number",
  async (t) => {
    const ctx = await buildReferralTestApp(t);
    for (const change of ['deleted', 'moved'] as const) {
      const [inviter, user] = [await createUser(ctx), await createUser(ctx)];
      ctx.outbox.beforeNotice = async () => {
        ctx.outbox.beforeNotice = undefined;
        const res =
          change === 'deleted' ? await deleteAccount(ctx, inviter.id) : await changePhone(ctx, inviter.id, nextPhone());
        t.equal(res.statusCode, 200, `the inviter's account ${change} meanwhile`);
      };
      t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
      t.match(ctx.outbox.notices.at(-1), { inviterId: inviter.id, to: inviter.phone }, 'the notice came late');
      t.notOk(ctx.outbox.pending.has(inviter.id), `${change}: nothing left on its way to ${inviter.phone}`);
    }
    // And an ordinary activation's notice stays.
    const [inviter, user] = [await createUser(ctx), await createUser(ctx)];
    t.equal((await activate(ctx.app, user, inviter.invite_code)).statusCode, 200);
    t.equal(ctx.outbox.pending.get(inviter.id), inviter.phone, 'a notice on its way to the inviter');
  },
);
