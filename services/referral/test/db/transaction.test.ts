import t from 'tap';
import { AppError } from '@refstack/shared/contracts';
import { createTestDatabase } from '@refstack/shared/testing';
import { createDatabase, poolOf, runStatement, type HeldConnection } from '../../src/db/database.js';
import { Deadline } from '../../src/db/deadline.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { queuedStatement, serializable } from '../../src/db/transaction.js';
import { eventually } from '../referral-test-app.js';

t.test('serialization failures are retried until the deadline, then the last one is the answer', async (t) => {
  const db = createDatabase({ url: await createTestDatabase(t), poolSize: 2 });
  t.teardown(() => db.destroy());
  let attempts = 0;
  const started = Date.now();
  const outcome = await serializable(
    db,
    async () => {
      attempts += 1;
      throw Object.assign(new Error('could not serialize access'), { code: '40001' });
    },
    { deadline: Deadline.in(500) },
  ).then(
    () => 'resolved',
    (error: { code?: string }) => error.code,
  );
  // The last serialization failure, or the deadline's own 503 when a pause ran late on a loaded
  // machine: both answer the client 503 service_unavailable.
  t.ok(outcome === '40001' || outcome === 'service_unavailable', `the answer (${outcome})`);
  const took = Date.now() - started;
  t.ok(attempts > 1, `retried (${attempts} attempts)`);
  // The deadline plus one backoff pause at most, and a loaded machine's slack.
  t.ok(took < 500 + 200 + 1500, `stopped at the deadline (${took} ms)`);
});

t.test('work past its deadline commits nothing', async (t) => {
  const db = createDatabase({ url: await createTestDatabase(t), poolSize: 2 });
  t.teardown(() => db.destroy());
  await migrateToLatest(db);
  const deadline = Deadline.in(300);
  await t.rejects(
    serializable(
      db,
      async (trx) => {
        await trx.insertInto('users').values({ phone: '+79000000001', invite_code: 'LATE01' }).execute();
        // Still inside the transaction when the caller's time runs out.
        await eventually('the deadline passes', () => deadline.remainingMs() === 0, 5000);
      },
      { deadline },
    ),
    { code: 'service_unavailable' },
  );
  t.equal((await db.selectFrom('users').select('id').execute()).length, 0, 'the insert was rolled back');
});

t.test('a deadline answers 503 when the work does not, and leaves finished work alone', async (t) => {
  const started = Date.now();
  const never = new Promise<never>(() => undefined);
  const guard = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5000).unref());
  const outcome = await Promise.race([
    Deadline.in(200)
      .race(never)
      .catch((error: unknown) => error),
    guard,
  ]);
  t.match(outcome, { code: 'service_unavailable', status: 503, extras: { retryAfter: 1 } });
  t.ok(Date.now() - started < 5000, `answered at the deadline (${Date.now() - started} ms)`);
  t.equal(await Deadline.in(200).race(Promise.resolve('done')), 'done');
});

t.test(
  'once a deadline has answered 503, no step passes its check, even by a clock that says it is early',
  async (t) => {
    const deadline = Deadline.in(50);
    await t.rejects(deadline.race(new Promise<never>(() => undefined)), { code: 'service_unavailable' });
    // Node may fire the timer up to a millisecond before Date.now() reaches the moment.
    const realNow = Date.now;
    Date.now = () => deadline.at - 1;
    try {
      t.throws(() => deadline.beginCommit(), { code: 'service_unavailable' }, 'the commit does not start');
      t.throws(() => deadline.check(), { code: 'service_unavailable' }, 'nor any other step');
    } finally {
      Date.now = realNow;
    }
  },
);

t.test('a commit under way when the deadline passes is waited for: a 503 never hides a commit', async (t) => {
  const deadline = Deadline.in(100);
  const committed = deadline.race(
    (async () => {
      deadline.beginCommit();
      await eventually('the deadline passes during the commit', () => deadline.remainingMs() === 0, 5000);
      await new Promise((resolve) => setTimeout(resolve, 100));
      return 'committed';
    })(),
  );
  t.equal(await committed, 'committed');
});

// A queued statement commits as it ends, so once it is sent its outcome is the answer. Waiting for
// a connection comes before that: a deadline passing then answers 503, and the statement never runs.
t.test(
  'a queued statement still waiting for a connection at its deadline is answered 503 and never sent',
  async (t) => {
    const db = createDatabase({ url: await createTestDatabase(t), poolSize: 2 });
    t.teardown(() => db.destroy());
    const pool = poolOf(db);
    const busy = [await pool.connect(), await pool.connect()];
    const deadline = Deadline.in(300);
    let sent = false;
    const answer = deadline.race(
      queuedStatement(db, deadline, async (on, lockWaitMs) => {
        sent = true;
        return runStatement<{ waits: number }>(on, { name: 'waits', text: 'SELECT $1::int AS waits' }, [lockWaitMs]);
      }),
    );
    await t.rejects(answer, { code: 'service_unavailable' });
    for (const client of busy) client.release();
    await eventually('the pool has its connections back', () => pool.idleCount === 2 && pool.waitingCount === 0, 5000);
    t.notOk(sent, 'the statement was not sent');

    // With a connection free, it runs, with what is left of its deadline for lock waits.
    const later = Deadline.in(5000);
    const rows = await queuedStatement(db, later, (on, lockWaitMs) =>
      runStatement<{ waits: number }>(on, { name: 'waits', text: 'SELECT $1::int AS waits' }, [lockWaitMs]),
    );
    t.ok(rows[0]!.waits >= 1 && rows[0]!.waits <= 1000, `lock waits bounded (${rows[0]!.waits} ms)`);
  },
);

// An activation's refusals (an unknown code, one's own, a cycle) are answers its caller makes of
// the statement's result: the connection did nothing wrong and goes back to the pool. One that
// failed on the client side does not (connection-reuse.test.ts).
t.test('a queued statement refused by its caller keeps its connection; a client-side failure does not', async (t) => {
  const db = createDatabase({ url: await createTestDatabase(t), poolSize: 1 });
  t.teardown(() => db.destroy());
  const pidOn = async (on: HeldConnection) =>
    (await runStatement<{ pid: number }>(on, { name: 'pid', text: 'SELECT pg_backend_pid() AS pid' }, []))[0]!.pid;
  const pids: number[] = [];
  for (let i = 0; i < 3; i += 1)
    await t.rejects(
      queuedStatement(db, Deadline.in(5000), async (on) => {
        pids.push(await pidOn(on));
        throw new AppError('invite_not_found', 'refused');
      }),
      { code: 'invite_not_found' },
    );
  t.equal(new Set(pids).size, 1, `one connection throughout (${pids.join(', ')})`);

  const unsendable = {
    toPostgres: () => {
      throw new Error('cannot be sent');
    },
  };
  await t.rejects(
    queuedStatement(db, Deadline.in(5000), (on) =>
      runStatement(on, { name: 'echo', text: 'SELECT $1::text AS echo' }, [unsendable]),
    ),
    { message: 'cannot be sent' },
  );
  const after = await queuedStatement(db, Deadline.in(5000), pidOn);
  t.not(after, pids[0], 'after a client-side failure, a new connection');
});
