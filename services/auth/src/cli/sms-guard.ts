import { ConfigError, normalizePhone, type Config } from '@refstack/shared/contracts';
import type { RedisClient as Redis } from '@refstack/shared/platform/redis';
import { SmsBudgetCounter, untilNextUtcDay } from '../guard/budget.js';
import { rangeGuard } from '../guard/index.js';
import type { RangeState } from '../guard/range-guard.js';

export const GUARD_USAGE = [
  'usage: sms guard status <phone|+prefix> [--json]   why a number or range is refused, and the budget',
  '       sms guard lift <phone|+prefix>             lift the range’s automatic block and forget its counts',
  '       sms guard safe add|remove <phone|+prefix>  keep a number or prefix out of every automatic block',
  '       sms guard safe list',
].join('\n');

/** A full number (any country) is itself; anything else must be a prefix: + and digits. */
function target(input: string, config: Config): { value: string; isNumber: boolean } {
  const phone = normalizePhone(input, { defaultRegion: config.phone.defaultRegion, allowedCountries: '*' });
  if (phone.ok) return { value: phone.e164, isNumber: true };
  const prefix = input.replace(/[\s().-]/g, '');
  if (/^\+[1-9]\d{0,14}$/.test(prefix)) return { value: prefix, isNumber: false };
  throw new ConfigError([`${input}: neither a phone number nor an E.164 prefix (+ and digits)`]);
}

const time = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

export function formatRange(state: RangeState, config: Config, now: number): string {
  const { guard } = config;
  const conversion = state.settledSends > 0 ? (state.verified / state.settledSends).toFixed(2) : 'n/a';
  const lines = [
    `range ${state.range} (numbers ${state.range}${'x'.repeat(guard.prefixDigits)})`,
    `  safe list: ${state.safe ? 'yes (no automatic block applies)' : 'no'}`,
    `  codes sent in the last hour: ${state.sendsLastHour} of ${guard.prefixPerHour}`,
    `  last 24 h: ${state.settledSends} settled sends, ${state.verified} verified (conversion ${conversion}, ` +
      `blocked below ${guard.minConversion} once 20 sends settle)`,
  ];
  if (state.block) {
    lines.push(
      `  BLOCKED: ${state.block.reason} since ${time(state.block.at)} until ${time(state.block.until)} ` +
        `(${Math.ceil((state.block.until - now) / 60_000)} min); lift with: pnpm sms guard lift ${state.range}`,
    );
  } else if (!state.safe && state.sendsLastHour >= guard.prefixPerHour) {
    lines.push('  REFUSING: the hourly limit is reached; it lifts as the oldest sends leave the hour');
  } else {
    lines.push('  not blocked');
  }
  return `${lines.join('\n')}\n`;
}

export async function guardCommand(args: string[], config: Config, redis: Redis, json: boolean): Promise<string> {
  const ranges = rangeGuard(redis, config);
  const now = Date.now();
  const [action, first, second] = args;
  if (action === 'status' && first) {
    const { value, isNumber } = target(first, config);
    const state = await ranges.state(value, now, isNumber);
    const budget = await new SmsBudgetCounter(redis, config.redisKeyPrefix, config.guard.budget, {
      onUsage: () => undefined,
      onThreshold: () => undefined,
    }).state(now);
    const testPhone = isNumber ? config.guard.testPhones.get(value) : undefined;
    if (json)
      return `${JSON.stringify({ range: state, budget, test_phone_until: testPhone?.until ?? null }, null, 2)}\n`;
    const lines = [formatRange(state, config, now)];
    if (testPhone) lines.push(`test number (TEST_PHONES) until ${testPhone.until}: its code is fixed and never sent\n`);
    lines.push(
      budget.length === 0
        ? 'budget: none set (SMS_DAILY_BUDGET)\n'
        : `budget today (UTC, resets in ${Math.ceil(untilNextUtcDay(now) / 60_000)} min): ` +
            `${budget.map((b) => `${b.pool} ${b.used}/${b.limit}`).join(', ')}\n`,
    );
    return lines.join('');
  }
  if (action === 'lift' && first) {
    const { value, isNumber } = target(first, config);
    const range = isNumber ? ranges.rangeOf(value) : value;
    const lifted = await ranges.lift(range);
    return lifted ? `range ${range}: block lifted, counts forgotten\n` : `range ${range}: nothing to lift\n`;
  }
  if (action === 'safe' && first === 'list') {
    const list = await ranges.safeList();
    if (json) return `${JSON.stringify(list)}\n`;
    return list.length === 0 ? 'the safe list is empty\n' : `${list.join('\n')}\n`;
  }
  if (action === 'safe' && (first === 'add' || first === 'remove') && second) {
    const { value } = target(second, config);
    if (first === 'add') {
      await ranges.addSafe(value);
      return `${value}: on the safe list; no automatic block applies to it\n`;
    }
    return (await ranges.removeSafe(value)) ? `${value}: off the safe list\n` : `${value}: was not on the safe list\n`;
  }
  throw new ConfigError([GUARD_USAGE]);
}
