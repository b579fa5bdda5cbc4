import t, { type Test } from 'tap';
import { sql } from 'kysely';
import { FIND_OR_INSERT_USERS } from '../../src/users/user-repository.js';
import {
  buildReferralTestApp,
  createUser,
  INTERNAL_TOKEN,
  nextPhone,
  signInRaw,
  type ReferralTestContext,
  watchStatement,
} from '../referral-test-app.js';

t.test('refuses a missing or wrong service credential', async (t) => {
  const ctx = await buildReferralTestApp(t);
  for (const token of [null, '', 'wrong', `${INTERNAL_TOKEN}x`, INTERNAL_TOKEN.slice(0, -1)]) {
    const res = await signInRaw(ctx.app, { phone: nextPhone() }, token);
    t.equal(res.statusCode, 401, JSON.stringify(token));
    t.equal(res.json().code, 'unauthorized');
  }
  t.equal(
    (await ctx.db.selectFrom('users').select(ctx.db.fn.countAll().as('n')).executeTakeFirstOrThrow()).n,
    '0',
    'nothing was written',
  );
});

t.test('creates the user with a fresh invite code on first sign-in, finds it afterwards', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const first = await signInRaw(ctx.app, { phone: '8 912 345-67-89' });
  t.equal(first.statusCode, 200);
  t.match(first.json(), {
    created: true,
    roles: [],
    user: {
      id: String,
      phone: '+79123456789',
      invite_code: /^[A-Z0-9]{6}$/,
      activated_invite_code: null,
      invited_users: [],
      invited_count: 0,
      first_name: null,
      last_name: null,
      email: null,
      created_at: String,
    },
  });
  const again = await signInRaw(ctx.app, { phone: '+79123456789' });
  t.equal(again.json().created, false);
  t.same(again.json().user, first.json().user);
});

t.test('parallel first sign-ins of one phone make one user', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const phone = nextPhone();
  const answers = await Promise.all(Array.from({ length: 10 }, () => signInRaw(ctx.app, { phone })));
  t.ok(answers.every((r) => r.statusCode === 200));
  t.equal(answers.filter((r) => r.json().created).length, 1);
  t.equal(new Set(answers.map((r) => r.json().user.id)).size, 1);
});

t.test('invite codes are unique across many users', async (t) => {
  const ctx = await buildReferralTestApp(t);
  await Promise.all(Array.from({ length: 200 }, () => createUser(ctx)));
  const rows = await ctx.db.selectFrom('users').select('invite_code').execute();
  t.equal(rows.length, 200);
  t.equal(new Set(rows.map((r) => r.invite_code)).size, 200);
});

t.test('sign-in with an invite applies it in the same transaction', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const phone = nextPhone();
  const res = await signInRaw(ctx.app, { phone, invite_code: ` ${inviter.invite_code.toLowerCase()} ` });
  t.equal(res.statusCode, 200);
  t.equal(res.json().user.activated_invite_code, inviter.invite_code);
  const row = await ctx.db
    .selectFrom('users')
    .select('invited_count')
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.equal(row.invited_count, 1);
  t.equal(ctx.outbox.notices.length, 1, 'the inviter is told');
  t.match(ctx.outbox.notices[0], {
    inviterId: inviter.id,
    to: inviter.phone,
    inviteCode: inviter.invite_code,
    invitedCount: 1,
    windowSeconds: 3600,
  });
  const back = await signInRaw(ctx.app, { phone: inviter.phone });
  t.match(
    back.json(),
    { created: false, user: { id: inviter.id, invited_users: [phone], invited_count: 1 } },
    "the inviter's next sign-in shows the invitee",
  );
});

t.test('parallel first sign-ins of one phone, with and without an invite, make one user', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const phone = nextPhone();
  const answers = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      signInRaw(ctx.app, i % 2 ? { phone } : { phone, invite_code: inviter.invite_code }),
    ),
  );
  t.ok(
    answers.every((r) => r.statusCode === 200),
    answers.map((r) => r.statusCode).join(' '),
  );
  t.equal(answers.filter((r) => r.json().created).length, 1);
  t.equal(new Set(answers.map((r) => r.json().user.id)).size, 1);
  const row = await ctx.db
    .selectFrom('users')
    .select(['activated_invite_code'])
    .where('phone', '=', answers[0]!.json().user.phone)
    .executeTakeFirstOrThrow();
  t.equal(row.activated_invite_code, inviter.invite_code, 'the invite applied once, whichever sign-in came first');
  const count = await ctx.db
    .selectFrom('users')
    .select('invited_count')
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.equal(count.invited_count, 1);
});

t.test('a refused invite at sign-in writes nothing, not even the user', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const phone = nextPhone();
  const refused = await signInRaw(ctx.app, { phone, invite_code: 'ZZZZZZ' });
  t.equal(refused.statusCode, 404);
  t.equal(refused.json().code, 'invite_not_found');
  t.notOk(
    await ctx.db.selectFrom('users').select('id').where('phone', '=', phone).executeTakeFirst(),
    'no user was created',
  );
  const bad = await signInRaw(ctx.app, { phone, invite_code: '!!' });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().code, 'validation_failed');
  const plain = await signInRaw(ctx.app, { phone });
  t.equal(plain.json().created, true, 'signing in without it works');
});

t.test('bad phones are refused', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const res = await signInRaw(ctx.app, { phone: '+7 495 123 45 67' });
  t.equal(res.statusCode, 400);
  t.equal(res.json().code, 'invalid_phone');
});

/**
 * How many phones each sign-in statement carried, and how many times a phone was sent again after
 * its first statement: a sign-in taking its own steps (a shared statement that left it without a
 * row, or failed). Counted by phone, not by statements of one phone, which a sign-in alone in its
 * turn of the event loop also sends. `change` may rewrite a statement's values or answer it with a
 * failure instead.
 */
function watchSignIns(
  t: Test,
  db: ReferralTestContext['db'],
  change?: (values: string[][]) => { values?: string[][]; fail?: Error },
) {
  const executions = watchStatement(t, db, FIND_OR_INSERT_USERS.name, (values) => change?.(values as string[][]));
  const phonesOf = (values: unknown[]) => values[0] as string[];
  const sentAgain = () => {
    const sent = new Set<string>();
    let again = 0;
    for (const statement of executions.map(phonesOf)) {
      again += statement.filter((phone) => sent.has(phone)).length;
      for (const phone of statement) sent.add(phone);
    }
    return again;
  };
  return { shared: () => executions.map((values) => phonesOf(values).length), sentAgain };
}

t.test('sign-ins arriving together share a statement, and each gets its own user', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const returning = [await createUser(ctx), await createUser(ctx)];
  const blocked = await createUser(ctx);
  await sql`UPDATE users SET blocked_at = now() WHERE id = ${blocked.id}`.execute(ctx.db);
  const fresh = [nextPhone(), nextPhone(), nextPhone()];
  const watched = watchSignIns(t, ctx.db);
  const phones = [fresh[0]!, returning[0]!.phone, fresh[1]!, blocked.phone, fresh[0]!, returning[1]!.phone, fresh[2]!];
  const answers = await Promise.all(phones.map((phone) => signInRaw(ctx.app, { phone })));
  t.ok(Math.max(...watched.shared()) > 1, `${phones.length} sign-ins in statements of ${watched.shared().join(', ')}`);
  t.equal(watched.sentAgain(), 0, 'none needed a statement of its own');

  t.equal(answers[3]!.statusCode, 403, 'the blocked user alone is refused');
  t.equal(answers[3]!.json().code, 'account_blocked');
  for (const [i, user] of returning.entries()) {
    const answer = answers[phones.indexOf(user.phone)]!.json();
    t.same({ created: answer.created, id: answer.user.id }, { created: false, id: user.id }, `returning user ${i}`);
  }
  for (const phone of fresh) {
    const mine = answers.filter((_, i) => phones[i] === phone).map((r) => r.json());
    t.ok(
      mine.every((a) => a.user.phone === phone && a.user.id === mine[0].user.id),
      `${phone}: one user, its own`,
    );
    t.equal(mine.filter((a) => a.created).length, 1, `${phone}: created once`);
  }
  const rows = await sql<{ n: number }>`SELECT count(*)::int AS n FROM users`.execute(ctx.db);
  t.equal(rows.rows[0]?.n, 3 + fresh.length, 'one row per new phone');
});

t.test('a sign-in whose new invite code is taken in a shared statement gets another', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const owner = await createUser(ctx);
  // The second phone of every shared statement is given the owner's code, as a collision would.
  const watched = watchSignIns(t, ctx.db, ([phones, codes]) =>
    phones!.length > 1 ? { values: [phones!, codes!.map((c, i) => (i === 1 ? owner.invite_code : c))] } : {},
  );
  const phones = [nextPhone(), nextPhone(), nextPhone()];
  const answers = await Promise.all(phones.map((phone) => signInRaw(ctx.app, { phone })));
  t.ok(Math.max(...watched.shared()) > 1, 'the sign-ins shared a statement');
  t.ok(watched.sentAgain() >= 1, 'the one whose code was taken took its own steps');
  for (const [i, answer] of answers.entries()) {
    t.equal(answer.statusCode, 200);
    t.same([answer.json().created, answer.json().user.phone], [true, phones[i]], `sign-in ${i} created its user`);
    t.not(answer.json().user.invite_code, owner.invite_code, `sign-in ${i} has a code of its own`);
  }
});

t.test('a shared sign-in statement that fails: each runs alone, unless PostgreSQL is away', async (t) => {
  const ctx = await buildReferralTestApp(t);
  // A failure of the statement itself (a check it broke): each sign-in is retried alone and succeeds.
  const broken = watchSignIns(t, ctx.db, ([phones]) =>
    phones!.length > 1 ? { fail: Object.assign(new Error('check violation'), { code: '23514' }) } : {},
  );
  const phones = [nextPhone(), nextPhone(), nextPhone(), nextPhone()];
  const answers = await Promise.all(phones.map((phone) => signInRaw(ctx.app, { phone })));
  t.ok(Math.max(...broken.shared()) > 1, 'the sign-ins shared a statement');
  t.same(
    answers.map((r) => [r.statusCode, r.json().created]),
    phones.map(() => [200, true]),
    'each signed in alone',
  );
  t.equal(broken.sentAgain(), phones.length, 'each in a statement of its own');
});

t.test('a shared sign-in statement that runs out of time fails its sign-ins with 503 at once', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const away = watchSignIns(t, ctx.db, () => ({
    fail: Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
  }));
  const phones = [nextPhone(), nextPhone(), nextPhone()];
  const answers = await Promise.all(phones.map((phone) => signInRaw(ctx.app, { phone })));
  t.ok(Math.max(...away.shared()) > 1, 'the sign-ins shared a statement');
  t.same(
    answers.map((r) => [r.statusCode, r.json().code]),
    phones.map(() => [503, 'service_unavailable']),
  );
  t.equal(away.sentAgain(), 0, 'none was tried again alone');
});
