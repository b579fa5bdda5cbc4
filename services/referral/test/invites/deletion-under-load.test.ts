import t from 'tap';
import { sql } from 'kysely';
import pLimit from 'p-limit';
import { INTERNAL_DELETE_PATH, INTERNAL_PHONE_PATH, internalPath } from '@refstack/shared/contracts';
import {
  activate,
  as,
  buildReferralTestApp,
  createUser,
  internal,
  nextPhone,
  signInRaw,
  type ReferralTestContext,
  type TestUser,
} from '../referral-test-app.js';
import { assertForestAndCounts } from './graph-invariants.js';

type Answer = { statusCode: number; json(): { code?: string; old_phone?: string } };
type Node = TestUser & { parent: Node | undefined; children: Node[] };

/** Builds a forest through real activations: each node of a level invites `fanOut` of the next. */
async function forest(ctx: ReferralTestContext, roots: number, fanOut: number, depth: number): Promise<Node[][]> {
  const node = (user: TestUser, parent?: Node): Node => ({ ...user, parent, children: [] });
  const levels: Node[][] = [
    (await Promise.all(Array.from({ length: roots }, () => createUser(ctx)))).map((u) => node(u)),
  ];
  for (let level = 1; level < depth; level += 1) {
    const parents = levels[level - 1] ?? [];
    const children = await Promise.all(
      Array.from({ length: parents.length * fanOut }, async (_, i) =>
        node(await createUser(ctx), parents[Math.floor(i / fanOut)]),
      ),
    );
    const answers = await Promise.all(children.map((c) => activate(ctx.app, c, c.parent?.invite_code ?? '')));
    if (!answers.every((r) => r.statusCode === 200)) throw new Error(`level ${level}: an activation was refused`);
    for (const child of children) child.parent?.children.push(child);
    levels.push(children);
  }
  return levels;
}

/** A client's way with 503 (which says nothing was applied): ask again. Every answer is kept. */
async function answered(seen: number[], send: () => Promise<Answer>): Promise<Answer> {
  for (let attempt = 1; ; attempt += 1) {
    const res = await send();
    seen.push(res.statusCode);
    if (res.statusCode !== 503 || attempt === 30) return res;
  }
}

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

const CLIENTS = 24;

const at = <T>(items: readonly T[], i: number): T => items[i % items.length] as T;

// Deletions rewrite their inviter's list and end their code while, all at once and through the real
// routes: activations of their codes, of their invitees' codes and of their inviters' codes, sign-ins
// with their codes, and phone changes of their invitees (which rewrite the tombstones' own lists).
t.test('deletions racing activations, sign-ins and phone changes keep every invariant of the graph', async (t) => {
  const ctx = await buildReferralTestApp(t);
  // 4 roots, 3 invitees each, 4 levels: 160 users; those of the middle levels have both an inviter
  // and invitees, and a third of them (some the inviters of others) are deleted.
  const levels = await forest(ctx, 4, 3, 4);
  const victims = [...(levels[1] ?? []), ...(levels[2] ?? [])].filter((_, i) => i % 3 === 0);
  const victimCodes = new Set(victims.map((v) => v.invite_code));
  const theirInvitees = victims.flatMap((v) => v.children);
  const theirInviters = victims.flatMap((v) => (v.parent ? [v.parent] : []));
  const edgesBefore = await ctx.db.selectFrom('users').select(['id', 'invited_by_id']).execute();
  const free = await Promise.all(Array.from({ length: 120 }, () => createUser(ctx)));
  // Their tokens verified once beforehand, so an activation does not lose the race on signature checks.
  await Promise.all(free.map((u) => ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(u) })));
  t.comment(`${victims.length} victims, ${theirInvitees.length} of their invitees`);

  // Two in five free users take a victim's code, one a victim's invitee's, two a victim's inviter's
  // (whose list the deletion rewrites while they prepend to it).
  const codes = free.map((_, i) =>
    i % 5 < 2
      ? at(victims, i).invite_code
      : i % 5 < 3
        ? at(theirInvitees, i).invite_code
        : at(theirInviters, i).invite_code,
  );
  const newcomers = Array.from({ length: 20 }, (_, i) => ({
    phone: nextPhone(),
    code: at(victims, i + 5).invite_code,
  }));
  const movers = theirInvitees
    .filter((u) => !victimCodes.has(u.invite_code))
    .slice(0, 12)
    .map((user) => ({ user, phone: nextPhone() }));

  const statuses: number[] = [];
  const deleted = new Map<string, Answer>();
  const activated = new Map<string, Answer>();
  const signedIn = new Map<string, Answer>();
  const moved = new Map<string, Answer>();
  const work: Array<() => Promise<void>> = [
    ...victims.map((v) => async () => {
      deleted.set(
        v.id,
        await answered(statuses, () => internal(ctx.app, 'POST', internalPath(INTERNAL_DELETE_PATH, v.id))),
      );
    }),
    ...free.map((u, i) => async () => {
      activated.set(u.id, await answered(statuses, () => activate(ctx.app, u, codes[i] ?? '')));
    }),
    ...newcomers.map((n) => async () => {
      signedIn.set(
        n.phone,
        await answered(statuses, () => signInRaw(ctx.app, { phone: n.phone, invite_code: n.code })),
      );
    }),
    ...movers.map((m) => async () => {
      const change = () => internal(ctx.app, 'POST', internalPath(INTERNAL_PHONE_PATH, m.user.id), { phone: m.phone });
      moved.set(m.user.id, await answered(statuses, change));
    }),
  ];
  // Clients at once, each taking the next operation when done: the deletions land at random points
  // among the activations of their codes instead of all ahead of them.
  const clients = pLimit(CLIENTS);
  const started = Date.now();
  await Promise.all(shuffled(work).map((run) => clients(run)));
  const retried = statuses.filter((s) => s === 503).length;
  t.comment(`${work.length} operations in ${Date.now() - started} ms, ${retried} answers 503 asked again`);
  t.same(
    statuses.filter((s) => s >= 500 && s !== 503),
    [],
    'no answer was a server error',
  );

  for (const v of victims) t.same([deleted.get(v.id)?.statusCode, deleted.get(v.id)?.json().old_phone], [200, v.phone]);
  for (const m of movers) t.equal(moved.get(m.user.id)?.statusCode, 200, 'a phone change');
  let refused = 0;
  for (const [i, u] of free.entries()) {
    const answer = activated.get(u.id);
    const code = codes[i] ?? '';
    const stored = await ctx.db
      .selectFrom('users')
      .select('activated_invite_code')
      .where('id', '=', u.id)
      .executeTakeFirstOrThrow();
    if (answer?.statusCode === 200) {
      if (stored.activated_invite_code !== code)
        t.fail(`user ${u.id}: answered 200, stored ${stored.activated_invite_code}`);
    } else if (answer?.json().code === 'invite_not_found' && victimCodes.has(code)) {
      refused += 1;
      if (stored.activated_invite_code !== null) t.fail(`user ${u.id}: refused, yet activated`);
    } else t.fail(`user ${u.id} activating ${code}: ${answer?.statusCode} ${answer?.json().code}`);
  }
  for (const n of newcomers) {
    const answer = signedIn.get(n.phone);
    const made = await ctx.db.selectFrom('users').select('id').where('phone', '=', n.phone).executeTakeFirst();
    if (answer?.statusCode === 200 ? !made : answer?.json().code !== 'invite_not_found' || made)
      t.fail(`sign-in of ${n.phone}: ${answer?.statusCode}, user ${made ? 'made' : 'not made'}`);
  }
  t.comment(`${refused} activations of a victim's code came after its deletion and were refused`);

  const edgesAfter = new Map(
    (await ctx.db.selectFrom('users').select(['id', 'invited_by_id']).execute()).map((r) => [r.id, r.invited_by_id]),
  );
  t.ok(
    edgesBefore.every((e) => edgesAfter.get(e.id) === e.invited_by_id),
    'every activation from before stands, the invitees of the deleted included',
  );
  const tombstones = await ctx.db
    .selectFrom('users')
    .select('id')
    .where('deleted_at', 'is not', null)
    .where('phone', 'is', null)
    .where('first_name', 'is', null)
    .where('email', 'is', null)
    .execute();
  t.same(tombstones.map((r) => r.id).sort(), victims.map((v) => v.id).sort(), 'the victims alone are tombstones');

  await assertForestAndCounts(t, ctx.db);
  const erased = victims.map((v) => v.phone);
  const named = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM users
    WHERE phone = ANY(${erased}) OR first_name = ANY(${erased}) OR last_name = ANY(${erased})
      OR email = ANY(${erased})
      OR EXISTS (SELECT 1 FROM json_array_elements_text(invited_users) p WHERE p = ANY(${erased}))
  `.execute(ctx.db);
  t.equal(named.rows[0]?.n, 0, "no column of any row holds a deleted user's phone");
  const late = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM users i JOIN users d ON d.id = i.invited_by_id
    WHERE d.deleted_at IS NOT NULL AND i.activated_at >= d.deleted_at
  `.execute(ctx.db);
  t.equal(late.rows[0]?.n, 0, "no deleted user's code was activated after its deletion");
});

// The deletions rewrite the inviter's list while each activation prepends to it: both under the
// inviter's row lock, or one of them writes a list the other never saw.
t.test("deleting an inviter's invitees while others activate its code keeps its list exact", async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const invitees = await Promise.all(Array.from({ length: 30 }, () => createUser(ctx)));
  for (const u of invitees) t.equal((await activate(ctx.app, u, inviter.invite_code)).statusCode, 200);
  const joining = await Promise.all(Array.from({ length: 60 }, () => createUser(ctx)));
  await Promise.all(joining.map((u) => ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(u) })));
  const statuses: number[] = [];
  const leaving = invitees.filter((_, i) => i % 2 === 0);
  await Promise.all(
    shuffled([
      ...leaving.map(
        (u) => () => answered(statuses, () => internal(ctx.app, 'POST', internalPath(INTERNAL_DELETE_PATH, u.id))),
      ),
      ...joining.map((u) => () => answered(statuses, () => activate(ctx.app, u, inviter.invite_code))),
    ]).map((run) => run()),
  );
  t.same(
    statuses.filter((s) => s !== 200 && s !== 503),
    [],
    'each answered 200 in the end',
  );
  const row = await ctx.db.selectFrom('users').selectAll().where('id', '=', inviter.id).executeTakeFirstOrThrow();
  t.equal(row.invited_count, 90);
  t.equal(row.invited_users.filter((p) => p === null).length, leaving.length, 'a null for each deleted invitee');
  await assertForestAndCounts(t, ctx.db);
});
