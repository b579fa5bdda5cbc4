import { spawn } from 'node:child_process';
import t from 'tap';
import { builtEntry, processSpec } from '@refstack/shared/contracts';
import { REPO_ROOT } from '@refstack/shared/testing';

// Real processes that fail to start, with passwords in their URLs: what they print names the URL
// (so the operator knows which one) with the password masked.

function run(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'silent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not exit within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

t.test('`pnpm start` with unreachable stores names their URLs without the passwords', async (t) => {
  // Builds what changed first (which the cases below rely on), then checks the stores.
  const { code, output } = await run(
    ['scripts/start.mjs'],
    {
      DATABASE_URL: 'postgres://referral:s3cret-pg@127.0.0.1:1/referral',
      REDIS_URL: 'redis://:s3cret-redis@127.0.0.1:1',
    },
    300_000,
  );
  t.equal(code, 1);
  t.match(output, /Cannot reach PostgreSQL at postgres:\/\/referral:\*\*\*@127\.0\.0\.1:1\/referral/);
  t.match(output, /Cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
  t.notMatch(output, /s3cret/);
});

t.test('`pnpm start` on a Redis Cluster checks its nodes, not REDIS_URL', async (t) => {
  // REDIS_URL left at its default, which answers on this machine: only the cluster's nodes count.
  const { code, output } = await run(['scripts/start.mjs'], { REDIS_CLUSTER_NODES: '127.0.0.1:1,[::1]:2' });
  t.equal(code, 1, output);
  t.match(output, /Cannot reach any Redis Cluster node of REDIS_CLUSTER_NODES \(127\.0\.0\.1:1, \[::1\]:2\)/);
  t.notMatch(output, /Cannot reach Redis at/);
});

t.test('services refusing their configuration or an unreachable store never print a URL password', async (t) => {
  const cases: Array<[string, string, Record<string, string>, RegExp]> = [
    [
      'referral, a database URL of another kind',
      builtEntry(processSpec('referral')),
      { DATABASE_URL: 'mysql://referral:s3cret-pg@db.internal/referral' },
      /DATABASE_URL: .*\(got "mysql:\/\/referral:\*\*\*@db\.internal\/referral"\)/,
    ],
    [
      'referral, a database URL that does not parse',
      builtEntry(processSpec('referral')),
      { DATABASE_URL: 'postgres://referral:s3cret-pg@127.0.0.1:99999/referral' },
      /DATABASE_URL: is not a valid URL \(got "postgres:\/\/referral:\*\*\*@127\.0\.0\.1:99999\/referral"\)/,
    ],
    [
      'auth, Redis not there',
      builtEntry(processSpec('auth')),
      { REDIS_URL: 'redis://:s3cret-redis@127.0.0.1:1' },
      /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/,
    ],
    [
      'the gateway, an upstream URL that does not parse',
      builtEntry(processSpec('gateway')),
      { AUTH_URL: 'http://svc:s3cret-up@127.0.0.1:99999' },
      /AUTH_URL: is not a valid URL \(got "http:\/\/svc:\*\*\*@127\.0\.0\.1:99999"\)/,
    ],
  ];
  for (const [what, entry, env, pattern] of cases) {
    const { code, output } = await run([entry], env);
    t.equal(code, 1, `${what}: exits 1`);
    t.match(output, pattern, `${what}: says what is wrong`);
    t.notMatch(output, /s3cret/, `${what}: no password`);
  }
});
