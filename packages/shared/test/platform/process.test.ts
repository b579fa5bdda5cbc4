import t, { type Test } from 'tap';
import { loadConfig } from '../../src/contracts/config.js';
import { exitOnStartupError, StoreUnreachableError } from '../../src/platform/process.js';

/** What exitOnStartupError prints, and that it exits 1, without ending the test process. */
function printed(t: Test, error: unknown): string {
  let out = '';
  const exited: number[] = [];
  t.intercept(process.stderr, 'write', {
    value: (chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    },
  });
  t.intercept(process, 'exit', {
    value: (code?: number) => {
      exited.push(code ?? 0);
      throw new Error('exited');
    },
  });
  t.throws(() => exitOnStartupError('demo', error), { message: 'exited' });
  t.same(exited, [1], 'exits 1');
  return out;
}

const configError = (env: Record<string, string>): unknown => {
  try {
    loadConfig(env);
  } catch (error) {
    return error;
  }
  throw new Error('expected a ConfigError');
};

t.test('start-up failures never print a password inside a URL', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    [
      'a config error quoting the value',
      configError({ DATABASE_URL: 'mysql://u:s3cret-pw@db.internal/referral' }),
      /DATABASE_URL: .*mysql:\/\/u:\*\*\*@db\.internal/,
    ],
    [
      'an unreachable store',
      new StoreUnreachableError(
        'Postgres',
        'postgres://u:s3cret-pw@db.internal:5432/referral',
        new Error('connect ECONNREFUSED'),
      ),
      /cannot reach Postgres at postgres:\/\/u:\*\*\*@db\.internal:5432\/referral: connect ECONNREFUSED/,
    ],
    [
      'an unreachable store whose URL does not parse',
      new StoreUnreachableError('Redis', 'redis://:s3cret-pw@[::1/0', new Error('Invalid URL')),
      /cannot reach Redis at redis:\/\/:\*\*\*@\[::1\/0/,
    ],
    [
      "a library's error that quotes the URL",
      new Error('could not connect with redis://:s3cret-pw@cache.internal:6379/0 (NOAUTH)'),
      /failed to start: Error: could not connect with redis:\/\/:\*\*\*@cache\.internal:6379\/0 \(NOAUTH\)/,
    ],
    [
      'a thrown string',
      'postgres://u:s3cret-pw@db.internal/referral is down',
      /failed to start: postgres:\/\/u:\*\*\*@db\.internal\/referral is down/,
    ],
  ];
  for (const [what, error, pattern] of cases) {
    await t.test(what, async (t) => {
      const out = printed(t, error);
      t.match(out, pattern, 'the message still says what failed');
      t.notMatch(out, /s3cret/, 'no password');
    });
  }
});
