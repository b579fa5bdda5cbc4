import t, { type Test } from 'tap';
import fc from 'fast-check';
import pg from 'pg';
import { AppError } from '@refstack/shared/contracts';
import { TEST_POSTGRES_URL } from '@refstack/shared/testing';
import { decodeCursor, isBigintId, isPgTimestamp, encodeCursor } from '../src/paging/cursor.js';

const valid = (parts: string[]) => isPgTimestamp(parts[0]) && isBigintId(parts[1]);

t.test('cursor decoding refuses anything it did not issue with a 400, never anything else', async (t) => {
  const inputs = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.json().map((j) => Buffer.from(j).toString('base64url')),
    fc.array(fc.string(), { maxLength: 4 }).map((a) => encodeCursor(a)),
  );
  fc.assert(
    fc.property(inputs, (cursor) => {
      try {
        const parts = decodeCursor(cursor, 2, valid);
        return parts.length === 2 && valid(parts);
      } catch (error) {
        return error instanceof AppError && error.code === 'validation_failed' && error.status === 400;
      }
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 cursors');
});

t.test('what it issues, it reads back', async (t) => {
  const timestamp = fc
    .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
    .map(
      (d) =>
        `${d.toISOString().replace('T', ' ').replace('Z', '')}` +
        `${String(Math.floor(Math.random() * 1000)).padStart(3, '0')}+00`,
    );
  const id = fc.bigInt({ min: 1n, max: 2n ** 62n }).map(String);
  fc.assert(
    fc.property(timestamp, id, (at, userId) => {
      const parts = decodeCursor(encodeCursor([at, userId]), 2, valid);
      return parts[0] === at && parts[1] === userId;
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 round trips');
});

/** Whether PostgreSQL itself reads the text as a value of the type (it writes nothing). */
async function postgresReads(t: Test, type: 'timestamptz' | 'bigint'): Promise<(text: string) => Promise<boolean>> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  t.teardown(() => client.end());
  return async (text) => {
    try {
      await client.query(`SELECT $1::${type}`, [text]);
      return true;
    } catch (error) {
      if (!(error instanceof pg.DatabaseError)) throw error;
      return false;
    }
  };
}

const pad = (width: number) => (n: number) => String(n).padStart(width, '0');

t.test('a cursor time is accepted exactly when PostgreSQL reads it (less 24:00 and a 60th second)', async (t) => {
  const reads = await postgresReads(t, 'timestamptz');
  // Mostly in range with the edges themselves likely, sometimes anywhere its digits allow: so most
  // samples are good but for one field. Days 28 to 31 meet every month length, leap years included.
  const field = (width: number, min: number, max: number, edges: number[]) =>
    fc
      .oneof(
        { weight: 6, arbitrary: fc.oneof(fc.integer({ min, max }), fc.constantFrom(...edges)) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 10 ** width - 1 }) },
      )
      .map(pad(width));
  const timestamp = fc
    .record({
      year: field(4, 1, 9999, [0, 1, 1900, 2000, 2024, 2100, 9999]),
      month: field(2, 1, 12, [0, 1, 2, 12, 13]),
      day: field(2, 1, 28, [0, 1, 28, 29, 30, 31, 32]),
      hour: field(2, 0, 23, [0, 23, 24, 25]),
      minute: field(2, 0, 59, [0, 59, 60]),
      second: field(2, 0, 59, [0, 59, 60]),
      fraction: fc.option(
        fc.integer({ min: 0, max: 999_999 }).map((n) => `.${pad(6)(n)}`),
        { nil: '' },
      ),
      sign: fc.constantFrom('+', '-'),
      offsetHours: field(2, 0, 14, [0, 14, 15, 16, 99]),
      offsetMinutes: fc.option(
        field(2, 0, 59, [0, 30, 45, 59, 60]).map((m) => `:${m}`),
        { nil: '' },
      ),
    })
    .map(
      (f) =>
        `${f.year}-${f.month}-${f.day} ${f.hour}:${f.minute}:${f.second}${f.fraction}` +
        `${f.sign}${f.offsetHours}${f.offsetMinutes}`,
    );
  const disagreements: string[] = [];
  await fc.assert(
    fc.asyncProperty(timestamp, async (text) => {
      const ours = isPgTimestamp(text);
      // PostgreSQL rolls 24:00:00 and second 60 over into the next minute or day; no cursor holds them.
      const theirs = (await reads(text)) && !/ 24:00:00|:60(?:[.+-])/.test(text);
      if (ours !== theirs) disagreements.push(`${text}: ours ${ours}, PostgreSQL ${theirs}`);
      return ours === theirs;
    }),
    { numRuns: 1500 },
  );
  t.same(disagreements, []);
});

t.test('a cursor id is accepted exactly when it is a positive bigint in its plain form', async (t) => {
  const reads = await postgresReads(t, 'bigint');
  const id = fc.oneof(
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }).map(String),
    fc.constantFrom(
      '0',
      '-0',
      '00',
      '01',
      '9223372036854775807',
      '9223372036854775808',
      '-9223372036854775808',
      '+1',
      ' 1',
      '1e3',
      '',
    ),
    fc.stringMatching(/^-?[0-9]{1,21}$/),
  );
  const disagreements: string[] = [];
  await fc.assert(
    fc.asyncProperty(id, async (text) => {
      const ours = isBigintId(text);
      const theirs = (await reads(text)) && BigInt(text) > 0n && BigInt(text).toString() === text;
      if (ours !== theirs) disagreements.push(`${JSON.stringify(text)}: ours ${ours}, PostgreSQL ${theirs}`);
      return ours === theirs;
    }),
    { numRuns: 1000 },
  );
  t.same(disagreements, []);
});
