import { ConfigError, loadConfig, normalizePhone, phoneProblemDetail } from '@refstack/shared/contracts';
import { connectRedis, exitOnStartupError } from '@refstack/shared/platform';
import { MessageLog } from '../sms/message-log.js';
import { formatMessages } from '../sms/message-report.js';

const USAGE = 'usage: sms messages <phone> [--json]';

/**
 * `pnpm sms messages <phone>`: the phone's SMS of the last seven days with provider, status,
 * reason and times (`--json` for the records as they are kept). Texts and codes are never kept,
 * so never shown.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const [action, phoneInput] = args.filter((a) => a !== '--json');
  if (action !== 'messages' || !phoneInput) throw new ConfigError([USAGE]);
  const config = loadConfig(process.env);
  // Any country: a number may have been messaged under an earlier ALLOWED_COUNTRIES.
  const phone = normalizePhone(phoneInput, { defaultRegion: config.phone.defaultRegion, allowedCountries: '*' });
  if (!phone.ok) throw new ConfigError([`${phoneInput}: ${phoneProblemDetail(phone.reason)}`]);
  const redis = await connectRedis(config.redisUrl, 'api');
  try {
    const records = await new MessageLog(redis, config.redisKeyPrefix).list(phone.e164);
    process.stdout.write(json ? `${JSON.stringify(records, null, 2)}\n` : formatMessages(phone.e164, records));
  } finally {
    redis.disconnect();
  }
}

main().catch((error: unknown) => exitOnStartupError('sms', error));
