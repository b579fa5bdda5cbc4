import { loadConfig, type Config } from '../contracts/config.js';

/**
 * Config for a test: the contract's defaults, quiet logs, overrides given as env strings. The only
 * defaults changed are the SMS guard's per-range limits (rate and conversion): tests draw their
 * phones from a few number ranges and seldom verify them all, and the guard's own tests set them.
 */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    SMS_PREFIX_PER_HOUR: '1000000',
    SMS_MIN_CONVERSION: '0',
    ...overrides,
  });
}

export const TEST_POSTGRES_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
