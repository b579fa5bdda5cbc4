import type { Kysely } from 'kysely';
import { ConfigError, loadConfig, normalizePhone, phoneProblemDetail, type Config } from '@refstack/shared/contracts';
import { closeRedis, connectRedis, exitOnStartupError, Revocations } from '@refstack/shared/platform';
import { createDatabase } from '../db/database.js';
import type { Database } from '../db/schema.js';
import { blockAccount } from '../users/account-service.js';
import { setAdmin, setBlocked } from '../users/user-repository.js';

const ACTIONS = ['grant', 'revoke', 'block', 'unblock'] as const;
type Action = (typeof ACTIONS)[number];
const USAGE = 'usage: admin grant <phone> | admin revoke <phone> | admin block <phone> | admin unblock <phone>';

const DONE: Record<Action, string> = {
  grant: 'is now an admin',
  revoke: 'is no longer an admin',
  block: 'is blocked; their access tokens stop working within seconds',
  unblock: 'is no longer blocked; access tokens from before the block stay refused',
};

function isAction(value: string | undefined): value is Action {
  return (ACTIONS as readonly string[]).includes(value ?? '');
}

/**
 * `pnpm admin grant <phone>`: makes an existing user an admin (revoke undoes it). Takes effect on
 * the user's next request: admin rights are read from the database, not from tokens.
 * `pnpm admin block <phone>`: blocks the user and revokes their access tokens everywhere (through
 * Redis, as the API's block does); unblock lets them sign in again.
 */
async function main(): Promise<void> {
  const [action, phoneInput] = process.argv.slice(2);
  if (!isAction(action) || !phoneInput) throw new ConfigError([USAGE]);
  const config = loadConfig(process.env);
  const phone = normalizePhone(phoneInput, config.phone);
  if (!phone.ok) throw new ConfigError([`${phoneInput}: ${phoneProblemDetail(phone.reason)}`]);
  const db = createDatabase({ url: config.databaseUrl, poolSize: 1 });
  try {
    const who = { phone: phone.e164 };
    let found: boolean;
    if (action === 'grant' || action === 'revoke') found = await setAdmin(db, phone.e164, action === 'grant');
    else if (action === 'unblock') found = (await setBlocked(db, who, false)) !== undefined;
    else found = await block(config, db, who);
    if (!found) throw new ConfigError([`no user has the phone ${phone.e164}; they must sign in once first`]);
    process.stdout.write(`${phone.e164} ${DONE[action]}\n`);
  } finally {
    await db.destroy();
  }
}

async function block(config: Config, db: Kysely<Database>, who: { phone: string }): Promise<boolean> {
  // Connected before anything is written, so an unreachable Redis stops the block before it is
  // made. A publish that fails after the write ends with its error while the account is blocked;
  // the same command again blocks nothing new and announces it.
  const redis = await connectRedis(config, 'api');
  try {
    const revocations = new Revocations(redis, config.redisKeyPrefix, {
      accessTtlSeconds: config.tokens.accessTtlSeconds,
    });
    return (await blockAccount(db, revocations, who)) !== undefined;
  } finally {
    await closeRedis(redis);
  }
}

main().catch((error: unknown) => exitOnStartupError('admin', error));
