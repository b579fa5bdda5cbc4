import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TEST_REDIS_URL } from '@refstack/shared/testing';
import { as, buildReferralTestApp, createUser, eventually, signInRaw } from '../referral-test-app.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../src/cli/admin.ts', import.meta.url));

async function admin(databaseUrl: string, ...args: string[]) {
  return adminWith({ DATABASE_URL: databaseUrl }, ...args);
}

async function adminWith(env: Record<string, string>, ...args: string[]) {
  return run(process.execPath, ['--conditions=@refstack/source', '--import', 'tsx', cli, ...args], {
    env: { ...process.env, ...env },
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
}

t.test('admin grant and revoke by phone, in any notation', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx, '+79123456789');
  const url = ctx.databaseUrl;
  const granted = await admin(url, 'grant', '8 (912) 345-67-89');
  t.equal(granted.code, 0);
  t.match(granted.stdout, '+79123456789 is now an admin');
  t.equal(
    (await ctx.db.selectFrom('users').select('is_admin').where('id', '=', user.id).executeTakeFirstOrThrow()).is_admin,
    true,
  );
  await admin(url, 'revoke', '+79123456789');
  t.equal(
    (await ctx.db.selectFrom('users').select('is_admin').where('id', '=', user.id).executeTakeFirstOrThrow()).is_admin,
    false,
  );

  const unknown = await admin(url, 'grant', '+79001112233');
  t.not(unknown.code, 0);
  t.match(unknown.stderr, /no user has the phone \+79001112233/);
  const usage = await admin(url, 'promote');
  t.not(usage.code, 0);
  t.match(usage.stderr, /usage: admin grant <phone>/);
});

// A process of its own, as an operator runs it: the block reaches the running service through Redis.
t.test('admin block and unblock by phone: the tokens stop within seconds, sign-in works again after', async (t) => {
  const ctx = await buildReferralTestApp(t);
  const user = await createUser(ctx, '+79123456780');
  const env = { DATABASE_URL: ctx.databaseUrl, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: ctx.redisPrefix };
  const profileStatus = async () =>
    (await ctx.app.inject({ method: 'GET', url: '/api/v1/profile', headers: as(user) })).statusCode;
  t.equal(await profileStatus(), 200);

  const blocked = await adminWith(env, 'block', '8 912 345-67-80');
  t.equal(blocked.code, 0, blocked.stderr);
  t.match(blocked.stdout, '+79123456780 is blocked');
  await eventually('the running service refuses the token', async () => (await profileStatus()) === 401, 5000);
  t.equal((await signInRaw(ctx.app, { phone: user.phone })).json().code, 'account_blocked');

  const unblocked = await adminWith(env, 'unblock', '+79123456780');
  t.equal(unblocked.code, 0, unblocked.stderr);
  t.match(unblocked.stdout, '+79123456780 is no longer blocked');
  t.equal((await signInRaw(ctx.app, { phone: user.phone })).statusCode, 200, 'signing in works again');
  t.equal(await profileStatus(), 401, 'the token from before the block stays refused');
});
