import t, { type Test } from 'tap';
import { sql } from 'kysely';
import { INVITEE_PAGES } from '../../src/invites/invite-repository.js';
import {
  activate,
  as,
  buildReferralTestApp,
  createUser,
  recordInviteesAsActivations,
  type ReferralTestContext,
  type TestUser,
  watchStatement,
} from '../referral-test-app.js';

t.test('paging over 250 invitees while new ones arrive: each seen once, newest first', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  // 250 invitees with distinct activation times (some sharing a timestamp to exercise the id tiebreak).
  await sql`
    INSERT INTO users (phone, invite_code, invited_by_id, activated_invite_code, activated_at)
    SELECT '+7999' || lpad(g::text, 7, '0'), 'P' || lpad(upper(to_hex(g)), 5, '0'),
      ${inviter.id}, ${inviter.invite_code},
           now() - (g / 2) * interval '1 second'
    FROM generate_series(1, 250) g
  `.execute(ctx.db);
  await recordInviteesAsActivations(ctx.db, inviter.id);

  const seen: string[] = [];
  const times: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const url: string = `/api/v1/profile/invited?limit=100${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await ctx.app.inject({ method: 'GET', url, headers: as(inviter) });
    t.equal(res.statusCode, 200);
    const body = res.json();
    for (const item of body.items) {
      seen.push(item.phone);
      times.push(item.activated_at);
    }
    cursor = body.next_cursor;
    pages += 1;
    // A newcomer between pages lands before page 1 and does not shift later pages.
    const newcomer = await createUser(ctx);
    t.equal((await activate(ctx.app, newcomer, inviter.invite_code)).statusCode, 200);
  } while (cursor);

  t.equal(pages, 3);
  t.equal(seen.length, 250);
  t.equal(new Set(seen).size, 250, 'no invitee twice');
  t.ok(
    seen.every((p) => p.startsWith('+7999')),
    'the newcomers did not leak into later pages',
  );
  t.same([...times].sort().reverse(), times, 'newest first');
  const page = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited', headers: as(inviter) })).json();
  t.equal(page.items.length, 50, 'limit defaults to 50');
  t.equal(page.total, 253);
  const profile = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(inviter) })).json();
  t.equal(profile.invited_users.length, 100, 'the profile embeds at most 100');
  const first = (
    await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited?limit=100', headers: as(inviter) })
  ).json();
  t.same(
    profile.invited_users,
    first.items.map((i: { phone: string }) => i.phone),
    'the newest 100, as the first page lists them',
  );
  t.equal(profile.invited_count, 253);
});

t.test('limits and cursors are validated', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  const forged = Buffer.from(JSON.stringify(["2026-01-01 00:00:00+00'; DROP TABLE users; --", '1'])).toString(
    'base64url',
  );
  for (const query of [
    'limit=0',
    'limit=101',
    'limit=abc',
    'cursor=!!!',
    'cursor=abc',
    `cursor=${forged}`,
    `cursor=${Buffer.from('[1,2]').toString('base64url')}`,
  ]) {
    const res = await ctx.app.inject({ method: 'GET', url: `/api/v1/profile/invited?${query}`, headers: as(user) });
    t.equal(res.statusCode, 400, query);
    t.equal(res.json().code, 'validation_failed', query);
  }
  const empty = (
    await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited?limit=100', headers: as(user) })
  ).json();
  t.same(empty, { items: [], next_cursor: null, total: 0 });
});

// The page's times are rendered by PostgreSQL; they must read exactly as a Date parsed from the
// same value would print them (UTC, milliseconds, the microseconds dropped rather than rounded).
t.test('activation times on a page read as Date#toISOString of the stored value', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const stored = [
    '2026-03-04 05:06:07.891999+03',
    '1999-12-31 23:59:59.9995+00',
    '2026-07-01 00:00:00+00',
    '2026-01-02 03:04:05.000001-11',
  ];
  for (const at of stored) {
    const invitee = await createUser(ctx);
    t.equal((await activate(ctx.app, invitee, inviter.invite_code)).statusCode, 200);
    await sql`UPDATE users SET activated_at = ${at}::timestamptz WHERE id = ${invitee.id}`.execute(ctx.db);
  }
  const page = (
    await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited', headers: as(inviter) })
  ).json() as { items: Array<{ id: string; activated_at: string }> };
  const asDates = await sql<{
    id: string;
    activated_at: Date;
  }>`SELECT id::text, activated_at FROM users WHERE invited_by_id = ${inviter.id}`.execute(ctx.db);
  const expected = new Map(asDates.rows.map((r) => [r.id, r.activated_at.toISOString()]));
  t.equal(page.items.length, stored.length);
  for (const item of page.items) t.equal(item.activated_at, expected.get(item.id), `invitee ${item.id}`);
  t.ok(
    page.items.some((item) => item.activated_at === '2026-03-04T02:06:07.891Z'),
    'microseconds are truncated, as a Date does',
  );
});

// As after the database's clock stepped back: the newest invitee's time is ahead of the clock. The
// activations that follow still list after it, newest first, as the embedded list has them.
t.test(
  'invitees activated after the clock stepped back still list newest first, as the profile embeds them',
  async (t) => {
    const ctx = await buildReferralTestApp(t);
    const inviter = await createUser(ctx);
    const first = await createUser(ctx);
    t.equal((await activate(ctx.app, first, inviter.invite_code)).statusCode, 200);
    await sql`UPDATE users SET activated_at = now() + interval '1 hour' WHERE id = ${first.id}`.execute(ctx.db);
    const later = [await createUser(ctx), await createUser(ctx)];
    for (const invitee of later) t.equal((await activate(ctx.app, invitee, inviter.invite_code)).statusCode, 200);

    const page = (
      await ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited', headers: as(inviter) })
    ).json() as { items: Array<{ phone: string; activated_at: string }> };
    const newestFirst = [...later]
      .reverse()
      .concat(first)
      .map((u) => u.phone);
    t.same(
      page.items.map((i) => i.phone),
      newestFirst,
      'each after the one before it',
    );
    const profile = (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(inviter) })).json();
    t.same(profile.invited_users, newestFirst, 'the embedded list in the same order');
    const stored = await sql<{ later: boolean }>`
      SELECT a.activated_at > b.activated_at AS later FROM users a, users b
      WHERE (a.id, b.id) IN ((${later[0]!.id}, ${first.id}), (${later[1]!.id}, ${later[0]!.id}))
    `.execute(ctx.db);
    t.same(
      stored.rows.map((r) => r.later),
      [true, true],
      'each stored time after the one activated before it',
    );
  },
);

// Cursors that decode into the right shape but name a time or an id that cannot exist: PostgreSQL
// would refuse them (a 500 if they got that far), so they are the client's 400.
t.test('a cursor naming an impossible time or id is validation_failed on both paged routes', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx);
  await ctx.db.updateTable('users').set({ is_admin: true }).where('id', '=', user.id).execute();
  const cursor = (parts: string[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');
  const impossibleTimes = [
    '2026-13-01 00:00:00+00',
    '2026-00-10 00:00:00+00',
    '2026-01-32 00:00:00+00',
    '2026-02-29 00:00:00+00',
    '2026-04-31 00:00:00+00',
    '2026-01-01 25:00:00+00',
    '2026-01-01 24:00:00+00',
    '2026-01-01 00:60:00+00',
    '2026-01-01 00:00:60+00',
    '0000-01-01 00:00:00+00',
    '2026-01-01 00:00:00+99',
    '2026-01-01 00:00:00+16',
    '2026-01-01 00:00:00+05:60',
  ];
  const impossibleIds = ['0', '-1', '9223372036854775808', '99999999999999999999', '01'];
  const cases = [
    ...impossibleTimes.map((at) => ['/api/v1/profile/invited', cursor([at, '1'])] as const),
    ...impossibleIds.map((id) => ['/api/v1/profile/invited', cursor(['2026-01-01 00:00:00.123456+00', id])] as const),
    ...impossibleIds.map((id) => ['/api/v1/users', cursor([id])] as const),
  ];
  for (const [path, value] of cases) {
    const res = await ctx.app.inject({ method: 'GET', url: `${path}?cursor=${value}`, headers: as(user) });
    const label = `${path} ${Buffer.from(value, 'base64url').toString('utf8')}`;
    t.equal(res.statusCode, 400, label);
    t.equal(res.json().code, 'validation_failed', label);
  }
  // The edges that do exist still page.
  for (const at of [
    '2024-02-29 23:59:59.999999+00',
    '0001-01-01 00:00:00+15',
    '9999-12-31 23:59:59-15:59',
    '2026-01-01 00:00:00+05:45',
  ]) {
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/api/v1/profile/invited?cursor=${cursor([at, '9223372036854775807'])}`,
      headers: as(user),
    });
    t.equal(res.statusCode, 200, at);
  }
  t.equal(
    (
      await ctx.app.inject({
        method: 'GET',
        url: `/api/v1/users?cursor=${cursor(['9223372036854775807'])}`,
        headers: as(user),
      })
    ).statusCode,
    200,
    'the largest bigint',
  );
});

/** How many pages each invitee-page statement carried; `fail` makes PostgreSQL refuse a statement. */
function watchPageStatements(t: Test, db: ReferralTestContext['db'], fail?: (inviterIds: string[]) => boolean) {
  const executions = watchStatement(t, db, INVITEE_PAGES.name, (values) =>
    // What PostgreSQL answers for a time it cannot read (invalid_datetime_format).
    fail?.(values[0] as string[]) ? { fail: Object.assign(new Error('bad timestamp'), { code: '22007' }) } : undefined,
  );
  return { pages: () => executions.map((values) => (values[0] as string[]).length) };
}

async function inviterWith(ctx: ReferralTestContext, invitees: number, digit: string) {
  const inviter = await createUser(ctx);
  await sql`
    INSERT INTO users (phone, invite_code, invited_by_id, activated_invite_code, activated_at)
    SELECT '+7998' || ${digit} || lpad(g::text, 6, '0'), ${digit} || 'Q' || lpad(upper(to_hex(g)), 4, '0'),
      ${inviter.id}, ${inviter.invite_code}, now() - (g / 3) * interval '1 second'
    FROM generate_series(1, ${invitees}::int) g
  `.execute(ctx.db);
  await recordInviteesAsActivations(ctx.db, inviter.id);
  return inviter;
}

t.test('invitee pages asked for together share a statement, and each gets its own page', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const many = await inviterWith(ctx, 130, '1');
  const few = await inviterWith(ctx, 3, '2');
  const none = await createUser(ctx);
  const blocked = await inviterWith(ctx, 2, '3');
  await sql`UPDATE users SET blocked_at = now() WHERE id = ${blocked.id}`.execute(ctx.db);
  const read = (user: TestUser, query = '') =>
    ctx.app.inject({ method: 'GET', url: `/api/v1/profile/invited${query}`, headers: as(user) });
  const cursor = (await read(many, '?limit=40')).json().next_cursor as string;
  const readers: Array<[TestUser, string]> = [
    [many, ''],
    [few, ''],
    [none, ''],
    [many, `?limit=40&cursor=${cursor}`],
    [blocked, ''],
    [many, '?limit=7'],
    [few, '?limit=2'],
    [many, `?limit=100&cursor=${cursor}`],
    [many, ''],
    [none, '?limit=1'],
  ];
  // Each read alone first: what the shared statement must answer for it.
  const alone = [];
  for (const [user, query] of readers) alone.push(await read(user, query));

  const watched = watchPageStatements(t, ctx.db);
  const together = await Promise.all(readers.map(([user, query]) => read(user, query)));
  const statements = watched.pages();
  t.ok(Math.max(...statements) > 1, `${readers.length} reads in statements of ${statements.join(', ')} pages`);
  for (const [i, res] of together.entries()) {
    t.equal(res.statusCode, alone[i]!.statusCode, `read ${i}: the same status`);
    t.same(res.json(), alone[i]!.json(), `read ${i}: the same page as read alone`);
  }
  t.equal(together[4]!.statusCode, 403, 'the blocked inviter alone is refused');
  t.equal(together[3]!.json().items.length, 40, 'a later page');
  t.equal(together[7]!.json().items.length, 90, 'the rest of the list');
  t.equal(together[7]!.json().next_cursor, null, 'and no page after it');
});

t.test('a page whose statement fails fails alone, not the pages it was asked with', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const victim = await inviterWith(ctx, 3, '4');
  const others = [await inviterWith(ctx, 60, '5'), await inviterWith(ctx, 1, '6'), await createUser(ctx)];
  const read = (user: TestUser) => ctx.app.inject({ method: 'GET', url: '/api/v1/profile/invited', headers: as(user) });
  const alone = [];
  for (const user of others) alone.push((await read(user)).json());

  const watched = watchPageStatements(t, ctx.db, (inviterIds) => inviterIds.includes(victim.id));
  const [failed, ...answers] = await Promise.all([read(victim), ...others.map(read)]);
  const statements = watched.pages();
  t.ok(Math.max(...statements) > 1, `pages shared a statement (${statements.join(', ')} pages)`);
  t.equal(failed!.statusCode, 500, 'the failing page fails');
  t.equal(failed!.json().code, 'internal_error');
  for (const [i, res] of answers.entries()) {
    t.equal(res.statusCode, 200, `page ${i} asked alongside it is answered`);
    t.same(res.json(), alone[i], `page ${i} is its own`);
  }
});
