import t from 'tap';
import { CompiledQuery, Kysely, PostgresDialect, sql, type RawBuilder } from 'kysely';
import pg from 'pg';
import { createTestDatabase } from '@refstack/shared/testing';
import { createDatabase, NO_TIMEOUTS } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';
import {
  ACTIVATE_INVITE,
  activateInvite,
  EMBEDDED_INVITEES,
  INVITEE_PAGES,
  inviteePagesValues,
  type InviteePageRequest,
} from '../src/invites/invite-repository.js';
import {
  FIND_OR_INSERT_USERS,
  findByPhone,
  findOrInsertUser,
  PROFILE_BY_ID,
  PROFILE_JSON_BY_IDS,
  searchQuery,
} from '../src/users/user-repository.js';
import { SCALE_USERS, seededCode, seedUsers } from './seed.js';

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/**
 * At scale (1,000,000 users by default, one of them with 100,000 invitees) the profile and the first page of
 * invitees are index scans that read only what they return: no sequential scan, no sort. A profile
 * does not read the invitee index at all: its embedded list lives on the owner's row.
 */
t.test(
  `profile, invitee, activation and sign-in plans stay index scans at ${SCALE_USERS.toLocaleString('en')} users`,
  async (t) => {
    const url = await createTestDatabase(t);
    const db = createDatabase({
      url,
      poolSize: 2,
      timeouts: { ...NO_TIMEOUTS, queryMs: 300_000 },
    });
    t.teardown(() => db.destroy());
    await migrateToLatest(db);

    const started = Date.now();
    await seedUsers(db, SCALE_USERS, 100_000);
    t.comment(`seeded in ${Date.now() - started} ms`);

    async function explain(
      query: RawBuilder<unknown> | { statement: { text: string }; values: readonly unknown[] },
    ): Promise<PlanNode[]> {
      const { text, values } =
        'statement' in query
          ? { text: query.statement.text, values: [...query.values] }
          : (({ sql: t, parameters }) => ({ text: t, values: [...parameters] }))(query.compile(db));
      const result = await db.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        CompiledQuery.raw(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values),
      );
      const plan = result.rows[0]?.['QUERY PLAN'][0]?.Plan;
      if (!plan) throw new Error('no plan');
      return nodes(plan);
    }

    // A real cursor deep in the list: the position of the 90,000th newest invitee.
    const deep = await sql<{
      at: string;
      id: string;
    }>`SELECT activated_at::text AS at, id::text FROM users WHERE id = 90002`.execute(db);
    const deepCursor = { activatedAt: deep.rows[0]?.at ?? '', id: deep.rows[0]?.id ?? '' };
    const pages = (requests: InviteePageRequest[]) => ({
      statement: INVITEE_PAGES,
      values: inviteePagesValues(requests),
    });

    for (const [name, query] of [
      ['profile of the user with 100,000 invitees', { statement: PROFILE_BY_ID, values: ['1'] }],
      ['first page of their invitees', pages([{ inviterId: '1', limit: 51 }])],
      ['a later page, deep in the list', pages([{ inviterId: '1', limit: 51, after: deepCursor }])],
      [
        'pages of reads arriving together',
        pages([
          { inviterId: '1', limit: 51 },
          { inviterId: '1', limit: 51, after: deepCursor },
          { inviterId: '1', limit: 51 },
        ]),
      ],
      ['profile of an ordinary user', { statement: PROFILE_BY_ID, values: ['500000'] }],
      ['GET /profile document of the user with 100,000 invitees', { statement: PROFILE_JSON_BY_IDS, values: [['1']] }],
      ['GET /profile document of an ordinary user', { statement: PROFILE_JSON_BY_IDS, values: [['500000']] }],
      [
        'GET /profile documents of reads arriving together',
        { statement: PROFILE_JSON_BY_IDS, values: [['500000', '1', '42', '500000', '999999']] },
      ],
    ] as const) {
      const plan = await explain(query);
      const types = plan.map((n) => n['Node Type']);
      t.notOk(types.includes('Seq Scan'), `${name}: no sequential scan (${types.join(' > ')})`);
      t.notOk(types.includes('Sort') || types.includes('Incremental Sort'), `${name}: no sort node`);
      t.ok(
        plan.some((n) => /Index/.test(n['Node Type'])),
        `${name}: an index scan`,
      );
      const scanned = plan.filter((n) => n['Index Name'] === 'users_invitees_idx');
      if (name.includes('profile')) t.equal(scanned.length, 0, `${name}: no read of the invitee index`);
      if (name.includes('page'))
        t.ok(
          scanned.some((n) => (n['Actual Rows'] ?? 0) === 51),
          `${name}: a full page found`,
        );
      for (const node of scanned) {
        t.ok((node['Actual Rows'] ?? 0) <= 101, `${name}: reads at most a page of invitees, not all of them`);
        t.equal(node['Node Type'], 'Index Only Scan', `${name}: the invitees come from the index alone`);
        t.equal(node['Rows Removed by Filter'] ?? 0, 0, `${name}: the cursor is where the scan starts, not a filter`);
      }
    }

    // The admin search, as the route runs it: a rare term through the indexes, a common one by a walk
    // of the newest users that ends with the page. Either way it reads about what it returns.
    for (const [name, search] of [
      ['an exact invite code', seededCode(654321)],
      ['a run of phone digits', '0654321'],
      ['a full number', '+79000654321'],
      ['a rare last name', 'ln654321'],
      ['a common first name', 'Ann'],
      ['a common run of digits', '123'],
      ['a term that matches nobody', 'Zyx'],
    ] as const) {
      const compiled = searchQuery(db, { search, limit: 51 }).compile();
      const result = await db.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        CompiledQuery.raw(`EXPLAIN (ANALYZE, FORMAT JSON) ${compiled.sql}`, [...compiled.parameters]),
      );
      const plan = nodes(result.rows[0]?.['QUERY PLAN'][0]?.Plan ?? ({ 'Node Type': 'none' } as PlanNode));
      const types = plan.map((n) => n['Node Type']);
      t.notOk(types.includes('Seq Scan'), `search by ${name}: no sequential scan (${types.join(' > ')})`);
      const removed = plan.reduce((sum, n) => sum + (n['Rows Removed by Filter'] ?? 0), 0);
      t.ok(
        removed <= SCALE_USERS / 20,
        `search by ${name}: ${removed} rows read and dropped, not the table (${types.join(' > ')})`,
      );
    }

    // Activation and sign-in as the service runs them, every statement's plan (those inside
    // activate_invite too) reported by auto_explain. Each runs more than five times on one
    // connection, after which PL/pgSQL may plan generically (without the ids): those plans too.
    const plans: Array<{ text: string; plan: PlanNode }> = [];
    const watched = new pg.Pool({
      connectionString: url,
      max: 1,
      options: [
        'session_preload_libraries=auto_explain',
        'auto_explain.log_min_duration=0',
        'auto_explain.log_nested_statements=on',
        'auto_explain.log_analyze=on',
        'auto_explain.log_format=json',
        'auto_explain.log_level=notice',
      ]
        .map((setting) => `-c ${setting}`)
        .join(' '),
    });
    watched.on('connect', (client) =>
      client.on('notice', (notice) => {
        const json = notice.message?.slice(notice.message.indexOf('{'));
        if (!json) return;
        const { 'Query Text': text, Plan: plan } = JSON.parse(json) as { 'Query Text': string; Plan: PlanNode };
        plans.push({ text: text.replace(/\s+/g, ' ').trim(), plan });
      }),
    );
    const kdb = new Kysely<Database>({ dialect: new PostgresDialect({ pool: watched }) });
    t.teardown(() => kdb.destroy());

    const outcomes: string[] = [];
    // New users activating the code of the user with 100,000 invitees.
    for (let id = 200000; id < 200008; id += 1)
      outcomes.push((await activateInvite(kdb, String(id), '000001', 1000)).outcome);
    // A user with invitees (so the chain above the owner is walked, and its top held) activating the
    // code of an owner who has an inviter of their own.
    outcomes.push((await activateInvite(kdb, '999998', seededCode(999999), 1000)).outcome);
    outcomes.push((await activateInvite(kdb, '1', seededCode(999998), 1000)).outcome);
    t.same(outcomes, Array(10).fill('activated'), 'ten activations');
    // Sign-ins: a returning user found, a new one inserted, in the one statement a sign-in makes; and
    // the lookup by phone it falls back on when a concurrent sign-in took the phone.
    for (let n = 0; n < 8; n += 1) {
      const returning = await findOrInsertUser(kdb, `+7900${String(300000 + n).padStart(7, '0')}`, 'ZZZZZZ');
      t.equal(returning?.created, false, 'a returning user found');
      const fresh = await findOrInsertUser(kdb, `+7911${String(n).padStart(7, '0')}`, `N${String(n).padStart(5, '0')}`);
      t.equal(fresh?.created, true, 'a new user inserted');
      t.ok(await findByPhone(kdb, `+7911${String(n).padStart(7, '0')}`), 'a user found by phone');
    }
    // The same statements as the service prepares them, named: past five runs on a connection
    // PostgreSQL may plan them generically, and those plans are reported too.
    for (let n = 8; n < 16; n += 1) {
      const returning = await watched.query<{ created: boolean }>({
        ...FIND_OR_INSERT_USERS,
        values: [[`+7900${String(300000 + n).padStart(7, '0')}`], ['ZZZZZZ']],
      });
      t.equal(returning.rows[0]?.created, false, 'a returning user found (named)');
      const fresh = await watched.query<{ created: boolean }>({
        ...FIND_OR_INSERT_USERS,
        values: [[`+7911${String(n).padStart(7, '0')}`], [`N${String(n).padStart(5, '0')}`]],
      });
      t.equal(fresh.rows[0]?.created, true, 'a new user inserted (named)');
      const activation = await watched.query<{ outcome: string }>({
        ...ACTIVATE_INVITE,
        values: [String(200000 + n), '000001', EMBEDDED_INVITEES, 1000],
      });
      t.equal(activation.rows[0]?.outcome, 'activated', 'an activation (named)');
      const page = await watched.query({
        ...INVITEE_PAGES,
        values: inviteePagesValues([
          { inviterId: '1', limit: 51 },
          { inviterId: '1', limit: 51, after: deepCursor },
          { inviterId: String(200000 + n), limit: 51 },
        ]),
      });
      t.equal(page.rows.length, 51 + 51 + 1, 'two full pages and an inviter without invitees (named)');
      // Sign-ins arriving together: two returning users and two new ones in one statement.
      const together = await watched.query<{ created: boolean }>({
        ...FIND_OR_INSERT_USERS,
        values: [
          [
            `+7900${String(310000 + n).padStart(7, '0')}`,
            `+7900${String(320000 + n).padStart(7, '0')}`,
            `+7912${String(n).padStart(7, '0')}`,
            `+7913${String(n).padStart(7, '0')}`,
          ],
          ['ZZZZZZ', 'ZZZZZZ', `M${String(n).padStart(5, '0')}`, `L${String(n).padStart(5, '0')}`],
        ],
      });
      t.same(
        together.rows.map((r) => r.created).sort(),
        [false, false, true, true],
        'two returning users found, two new ones inserted (named, together)',
      );
    }

    const seen = (part: string) => plans.some((p) => p.text.toLowerCase().includes(part.toLowerCase()));
    for (const part of [
      'FOR UPDATE',
      'FOR SHARE',
      'WITH RECURSIVE chain',
      'UPDATE users w',
      'UPDATE users o',
      'SELECT n.activated_at FROM users n',
      'inserted AS (',
      'WHERE phone = $1',
      'JOIN LATERAL',
      'unnest($1::text[], $2::text[])',
    ])
      t.ok(seen(part), `a plan of "${part}" was reported`);
    for (const { plan } of plans.filter((p) => p.text.includes('JOIN LATERAL'))) {
      const scanned = nodes(plan).filter((n) => n['Index Name'] === 'users_invitees_idx');
      t.ok(scanned.length > 0, 'a page read from the invitee index');
      for (const node of scanned) {
        t.equal(node['Node Type'], 'Index Only Scan', 'a page comes from the invitee index alone');
        t.equal(node['Rows Removed by Filter'] ?? 0, 0, 'the page starts at its position, no filter');
      }
    }
    // The newest invitee's time, under the owner's locks: one entry of the invitee index, not the
    // 100,000 of the popular owner.
    for (const { plan } of plans.filter((p) => p.text.includes('SELECT n.activated_at FROM users n'))) {
      const scanned = nodes(plan).filter((n) => n['Index Name'] === 'users_invitees_idx');
      t.ok(scanned.length > 0, "the newest invitee's time read from the invitee index");
      for (const node of scanned) t.ok((node['Actual Rows'] ?? 0) <= 1, `one entry read (${node['Actual Rows']})`);
    }
    const offending = plans.filter(({ plan }) =>
      nodes(plan).some(
        (n) => n['Node Type'] === 'Seq Scan' || n['Node Type'] === 'Sort' || n['Node Type'] === 'Incremental Sort',
      ),
    );
    t.same(
      offending.map(
        (o) =>
          `${o.text}: ${nodes(o.plan)
            .map((n) => n['Node Type'])
            .join(' > ')}`,
      ),
      [],
      `no sequential scan and no sort in the ${plans.length} statements of activation, sign-in and invitee pages`,
    );
  },
);
