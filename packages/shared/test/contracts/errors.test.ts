import t from 'tap';
import { ERROR_CATALOG, problemBody, type ErrorCode } from '../../src/contracts/errors.js';

t.test('a 429 without a retry hint still tells the client when to come back', async (t) => {
  const tooMany = (Object.keys(ERROR_CATALOG) as ErrorCode[]).filter((code) => ERROR_CATALOG[code].status === 429);
  t.ok(tooMany.length >= 3, tooMany.join(', '));
  for (const code of tooMany) {
    t.equal(problemBody(code, 'slow down').retry_after, 60, code);
    t.equal(
      problemBody(code, 'slow down', { retryAfter: 4.2 }).retry_after,
      5,
      `${code}: a given hint is kept, in whole seconds`,
    );
  }
  t.equal(problemBody('validation_failed', 'no').retry_after, undefined, 'other problems carry none');
});
