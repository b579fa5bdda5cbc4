import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildReferralTestApp, createUser } from '../referral-test-app.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../src/cli/admin.ts', import.meta.url));

async function admin(databaseUrl: string, ...args: string[]) {
  return run(process.execPath, ['--conditions=@refstack/source', '--import', 'tsx', cli, ...args], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
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
