import t from 'tap';
import { activate, buildReferralTestApp, createUser } from '../referral-test-app.js';
import { assertForestAndCounts } from './graph-invariants.js';

const ROUNDS = 15;

t.test('10 parallel activations by one user leave exactly one winner', async (t) => {
  const ctx = await buildReferralTestApp(t);
  for (let round = 0; round < ROUNDS; round += 1) {
    const user = await createUser(ctx);
    const inviters = await Promise.all(Array.from({ length: 10 }, () => createUser(ctx)));
    const answers = await Promise.all(inviters.map((inviter) => activate(ctx.app, user, inviter.invite_code)));
    const statuses = answers.map((r) => r.statusCode);
    if (statuses.filter((s) => s === 200).length !== 1 || statuses.filter((s) => s === 409).length !== 9) {
      t.fail(`round ${round}: ${statuses.join(',')}`);
    }
  }
  t.pass(`${ROUNDS} rounds`);
  await assertForestAndCounts(t, ctx.db);
});

t.test('10 parallel activations of the same code by one user all answer 200, counted once', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const user = await createUser(ctx);
  const answers = await Promise.all(Array.from({ length: 10 }, () => activate(ctx.app, user, inviter.invite_code)));
  t.same(
    answers.map((r) => r.statusCode),
    Array(10).fill(200),
  );
  await assertForestAndCounts(t, ctx.db);
});

t.test('crossed activations (A enters B, B enters A) never both succeed', async (t) => {
  const ctx = await buildReferralTestApp(t);
  for (let round = 0; round < ROUNDS * 2; round += 1) {
    const a = await createUser(ctx);
    const b = await createUser(ctx);
    const [ab, ba] = await Promise.all([activate(ctx.app, a, b.invite_code), activate(ctx.app, b, a.invite_code)]);
    const outcome = [ab.statusCode, ba.statusCode].sort().join(',');
    if (outcome !== '200,422') t.fail(`round ${round}: ${outcome} ${ab.body} ${ba.body}`);
  }
  t.pass(`${ROUNDS * 2} rounds`);
  await assertForestAndCounts(t, ctx.db);
});

t.test('two activations that would close a cycle of length 4 together never both succeed', async (t) => {
  // Existing: y under p1, p2 under x. Racing: x joins under y, p1 joins under p2.
  // Either alone is fine; both together would make x -> y -> p1 -> p2 -> x.
  const ctx = await buildReferralTestApp(t);
  for (let round = 0; round < ROUNDS; round += 1) {
    const [x, y, p1, p2] = await Promise.all([createUser(ctx), createUser(ctx), createUser(ctx), createUser(ctx)]);
    await activate(ctx.app, y, p1.invite_code);
    await activate(ctx.app, p2, x.invite_code);
    const [first, second] = await Promise.all([
      activate(ctx.app, x, y.invite_code),
      activate(ctx.app, p1, p2.invite_code),
    ]);
    const outcome = [first.statusCode, second.statusCode].sort().join(',');
    if (outcome !== '200,422') t.fail(`round ${round}: ${outcome}`);
  }
  t.pass(`${ROUNDS} rounds`);
  await assertForestAndCounts(t, ctx.db);
});

// More than the 100 a profile embeds, so the list is also cut while activations race.
t.test('many users activating one inviter at once keep invited_count and the embedded list exact', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const inviter = await createUser(ctx);
  const users = await Promise.all(Array.from({ length: 120 }, () => createUser(ctx)));
  const answers = await Promise.all(users.map((u) => activate(ctx.app, u, inviter.invite_code)));
  t.ok(answers.every((r) => r.statusCode === 200));
  const row = await ctx.db
    .selectFrom('users')
    .select(['invited_count', 'invited_users'])
    .where('id', '=', inviter.id)
    .executeTakeFirstOrThrow();
  t.equal(row.invited_count, 120);
  t.equal(row.invited_users.length, 100);
  await assertForestAndCounts(t, ctx.db);
});
