import t from 'tap';
import { poolOf } from '../../src/db/database.js';
import { holdInviterLocks, lockObserver } from '../advisory-locks.js';
import {
  activate,
  as,
  buildReferralTestApp,
  createUser,
  eventually,
  signInRaw,
  type TestUser,
} from '../referral-test-app.js';

// CONTRACT.md: "A repeat and the refusals above never wait behind other activations." Activations
// that may wait on an inviter's lock run in at most half the pool's connections at once (lock
// slots, src/db/transaction.ts); here every slot waits on a busy inviter and more activations queue
// for them in memory. A repeat or a refusal queued behind them would be answered only once all of
// them had a slot: each waits out its lock timeout (a second) wave after wave.
t.test('with every lock slot waiting on a busy inviter, a repeat and the refusals answer at once', async (t) => {
  const ctx = await buildReferralTestApp(t);
  // As lockSlotsOf counts them.
  const slots = Math.max(1, Math.floor((poolOf(ctx.db).options.max ?? 10) / 2));
  const waves = 6;

  const busy = await createUser(ctx);
  const [repeater, other, fresh, blocked] = [
    await createUser(ctx),
    await createUser(ctx),
    await createUser(ctx),
    await createUser(ctx),
  ];
  t.equal((await activate(ctx.app, repeater, busy.invite_code)).statusCode, 200);
  // top invited mid: mid's code in top's hands would close a cycle.
  const [top, mid] = [await createUser(ctx), await createUser(ctx)];
  t.equal((await activate(ctx.app, mid, top.invite_code)).statusCode, 200);
  await ctx.db.updateTable('users').set({ blocked_at: new Date() }).where('id', '=', blocked.id).execute();
  const occupants = await Promise.all(Array.from({ length: slots * waves }, () => createUser(ctx)));

  const holder = await holdInviterLocks(t, ctx.databaseUrl, [busy.id]);
  const serviceAdvisoryLocks = await lockObserver(t, ctx.databaseUrl);
  let occupantsAnswered = 0;
  const occupied = Promise.all(
    occupants.map(async (u) => {
      const res = await activate(ctx.app, u, busy.invite_code);
      occupantsAnswered += 1;
      return res.statusCode;
    }),
  );
  await eventually(
    'every lock slot waits on the busy inviter',
    async () => (await serviceAdvisoryLocks()).filter((l) => !l.granted).length === slots,
    10_000,
  );
  t.equal(occupantsAnswered, 0, 'the slots are full and the rest queue for them');

  const put = (user: TestUser, code: string, url = '/api/v1/profile/invite') =>
    ctx.app.inject({ method: 'PUT', url, headers: as(user), payload: { invite_code: code } });
  const cases: Array<[string, () => ReturnType<typeof put>, number, string | null]> = [
    ['a repeat', () => put(repeater, busy.invite_code), 200, null],
    ['a repeat, first seed', () => put(repeater, busy.invite_code, '/compat/seed1/profile/set-invite'), 200, null],
    ['another code', () => put(repeater, other.invite_code), 409, 'invite_already_activated'],
    ['an unknown code', () => put(fresh, 'ZZZZZZ'), 404, 'invite_not_found'],
    ["one's own code", () => put(fresh, fresh.invite_code), 422, 'invite_self'],
    ['a blocked account', () => put(blocked, other.invite_code), 403, 'account_blocked'],
    ['a cycle', () => put(top, mid.invite_code), 422, 'invite_cycle'],
    ['a cycle, first seed', () => put(top, mid.invite_code, '/compat/seed1/profile/set-invite'), 422, 'invite_cycle'],
    [
      'a cycle with profile changes (second seed)',
      () =>
        ctx.app.inject({
          method: 'PATCH',
          url: '/api/v1/users/current_user/',
          headers: as(top),
          payload: { first_name: 'Cycle', invited_by_code: mid.invite_code },
        }),
      400,
      'invite_cycle',
    ],
    [
      'a cycle at sign-in',
      () => signInRaw(ctx.app, { phone: top.phone, invite_code: mid.invite_code }),
      422,
      'invite_cycle',
    ],
    [
      'a repeat at sign-in',
      () => signInRaw(ctx.app, { phone: repeater.phone, invite_code: busy.invite_code }),
      200,
      null,
    ],
  ];
  const answers = await Promise.all(cases.map(([, ask]) => ask()));
  const answeredWhileQueued = occupantsAnswered;
  cases.forEach(([name, , status, code], n) => {
    const res = answers[n]!;
    t.equal(res.statusCode, status, `${name}: ${res.body}`);
    if (code !== null) t.equal(res.json().code, code, name);
  });
  // FIFO: a request queued behind the occupants gets a slot only after every occupant got one, and
  // so after all but the last slots' worth of them have answered.
  t.ok(
    answeredWhileQueued < occupants.length - slots,
    'answered while more than a wave of activations still queued for a slot ' +
      `(${answeredWhileQueued} of ${occupants.length} had answered)`,
  );

  await holder.release();
  const statuses = await occupied;
  t.ok(
    statuses.every((s) => s === 200 || s === 503),
    'the occupants went through or gave up by their deadline',
  );
  const rows = await ctx.db
    .selectFrom('users')
    .select(['id', 'invited_by_id', 'invited_count', 'first_name'])
    .where('id', 'in', [busy.id, top.id])
    .execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  t.match(byId.get(top.id), { invited_by_id: null, first_name: null }, 'no cycle, nothing written with it');
  t.equal(
    byId.get(busy.id)?.invited_count,
    1 + statuses.filter((s) => s === 200).length,
    'the repeats counted nobody again',
  );
});
