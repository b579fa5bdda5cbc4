import t from 'tap';
import fc from 'fast-check';
import { AppError } from '@refstack/shared';
import { decodeCursor, isBigintId, encodeCursor, PG_TIMESTAMP } from '../src/users/cursor.js';

const valid = (parts: string[]) => PG_TIMESTAMP.test(parts[0] ?? '') && isBigintId(parts[1]);

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
  const timestamp = fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => `${d.toISOString().replace('T', ' ').replace('Z', '')}${String(Math.floor(Math.random() * 1000)).padStart(3, '0')}+00`);
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
