import { ConfigError, loadConfig, normalizePhone, phoneProblemDetail } from '@refstack/shared/contracts';
import { connectRedis, exitOnStartupError } from '@refstack/shared/platform';
import { MessageLog } from '../sms/message-log.js';
import { formatMessages } from '../sms/message-report.js';
import { GUARD_USAGE, guardCommand } from './sms-guard.js';

const USAGE = `usage: sms messages <phone> [--json]\n${GUARD_USAGE}`;

/**
 * `pnpm sms messages <phone>`: the phone's SMS of the last seven days with provider, status,
 * reason and times (`--json` for the records as they are kept). Texts and codes are never kept,
 * so never shown. `pnpm sms guard ...`: why the SMS guard refuses a number or range, lifting a
 * block, and the safe list.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const [action, ...rest] = args.filter((a) => a !== '--json');
  const phoneInput = rest[0];
  if (action !== 'guard' && (action !== 'messages' || !phoneInput)) throw new ConfigError([USAGE]);
  const config = loadConfig(process.env);
  const redis = await connectRedis(config, 'api');
  try {
    if (action === 'guard') {
      process.stdout.write(await guardCommand(rest, config, redis, json));
      return;
    }
    // Any country: a number may have been messaged under an earlier ALLOWED_COUNTRIES.
    const phone = normalizePhone(phoneInput ?? '', {
      defaultRegion: config.phone.defaultRegion,
      allowedCountries: '*',
    });
    if (!phone.ok) throw new ConfigError([`${phoneInput}: ${phoneProblemDetail(phone.reason)}`]);
    const records = await new MessageLog(redis, config.redisKeyPrefix).list(phone.e164);
    process.stdout.write(json ? `${JSON.stringify(records, null, 2)}\n` : formatMessages(phone.e164, records));
  } finally {
    redis.disconnect();
  }
}

main().catch((error: unknown) => exitOnStartupError('sms', error));
