import t from 'tap';
import { createTestDatabase } from '@refstack/shared/testing';
import { createDatabase, NO_TIMEOUTS } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import { activateInvite } from '../src/invites/invite-repository.js';
import { findOrInsertUser } from '../src/users/user-repository.js';
import { SCALE_USERS, seededCode, seedUsers } from './seed.js';

const ROUNDS = 6;
const BATCH = 200;

/**
 * Activation and sign-in cost the same at SCALE_USERS users as at 10,000. Measured and printed, not
 * asserted (a timing on a loaded machine proves nothing either way): batches on one connection to
 * each database, alternated ABBA so that the machine's drift falls on both alike. What is asserted
 * is that every call did what it should. `pnpm test:scale --users=10000000` runs it at ten million.
 */
t.test(`activation and sign-in at 10,000 users and at ${SCALE_USERS.toLocaleString('en')}, alternated`, async (t) => {
  const setUp = async (users: number, invitees: number, firstFree: number) => {
    const db = createDatabase({
      url: await createTestDatabase(t),
      poolSize: 1,
      timeouts: { ...NO_TIMEOUTS, queryMs: 600_000 },
    });
    t.teardown(() => db.destroy());
    await migrateToLatest(db);
    await seedUsers(db, users, invitees);
    return { db, users, next: firstFree, activation: { ms: 0, n: 0 }, signIn: { ms: 0, n: 0 } };
  };
  const started = Date.now();
  const small = await setUp(10_000, 1_000, 5_000);
  const large = await setUp(SCALE_USERS, 100_000, 200_000);
  t.comment(`seeded in ${Date.now() - started} ms`);

  const outcomes = new Map<string, number>();
  const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const side of round % 2 === 0 ? [small, large] : [large, small]) {
      let from = performance.now();
      for (let i = 0; i < BATCH; i += 1) {
        // New users activating the codes of 100 of the first user's invitees in turn.
        const done = await activateInvite(side.db, String(side.next++), seededCode(2 + (i % 100)), 1000);
        count(`activation ${done.outcome}`);
      }
      side.activation.ms += performance.now() - from;
      side.activation.n += BATCH;
      from = performance.now();
      for (let i = 0; i < BATCH; i += 1) {
        // A new user, then a returning one.
        const n = round * BATCH + i;
        const fresh = await findOrInsertUser(
          side.db,
          `+7913${String(n).padStart(7, '0')}`,
          `Z${String(n).padStart(5, '0')}`,
        );
        count(`sign-in ${fresh?.created === true ? 'created' : 'not created'}`);
        const back = await findOrInsertUser(side.db, `+7900${String(1_000 + n).padStart(7, '0')}`, 'ZZZZZZ');
        count(`sign-in ${back?.created === false ? 'found' : 'not found'}`);
      }
      side.signIn.ms += performance.now() - from;
      side.signIn.n += BATCH * 2;
    }
  }
  const calls = ROUNDS * BATCH * 2;
  t.same(
    Object.fromEntries(outcomes),
    { 'activation activated': calls, 'sign-in created': calls, 'sign-in found': calls },
    'every activation activated, every new user created, every returning one found',
  );
  const perCall = (x: { ms: number; n: number }) => x.ms / x.n;
  for (const what of ['activation', 'signIn'] as const) {
    const [a, b] = [perCall(small[what]), perCall(large[what])];
    t.comment(
      `${what === 'signIn' ? 'sign-in' : what}: ${a.toFixed(3)} ms per call at 10,000 users, ${b.toFixed(3)} ms at ` +
        `${SCALE_USERS.toLocaleString('en')} (${((b / a) * 100).toFixed(1)}%)`,
    );
  }
});
