import { ConfigError, loadConfig, normalizePhone, phoneProblemDetail } from '@refstack/shared/contracts';
import { exitOnStartupError } from '@refstack/shared/platform';
import { createDatabase } from '../db/database.js';
import { setAdmin } from '../users/user-repository.js';

const USAGE = 'usage: admin grant <phone> | admin revoke <phone>';

/**
 * `pnpm admin grant <phone>`: makes an existing user an admin (revoke undoes it). Takes effect on
 * the user's next request: admin rights are read from the database, not from tokens.
 */
async function main(): Promise<void> {
  const [action, phoneInput] = process.argv.slice(2);
  if ((action !== 'grant' && action !== 'revoke') || !phoneInput) throw new ConfigError([USAGE]);
  const config = loadConfig(process.env);
  const phone = normalizePhone(phoneInput, config.phone);
  if (!phone.ok) throw new ConfigError([`${phoneInput}: ${phoneProblemDetail(phone.reason)}`]);
  const db = createDatabase({ url: config.databaseUrl, poolSize: 1 });
  try {
    if (!(await setAdmin(db, phone.e164, action === 'grant'))) {
      throw new ConfigError([`no user has the phone ${phone.e164}; they must sign in once first`]);
    }
    process.stdout.write(`${phone.e164} is ${action === 'grant' ? 'now' : 'no longer'} an admin\n`);
  } finally {
    await db.destroy();
  }
}

main().catch((error: unknown) => exitOnStartupError('admin', error));
