import { readdirSync, readFileSync } from 'node:fs';

/** Which part of the system a process is, from its command line. */
const GROUPS: Array<[string, RegExp]> = [
  ['gateway', /gateway\/dist\/server\.js/],
  ['referral', /referral\/dist\/server\.js/],
  ['auth', /auth\/dist\/server\.js/],
  ['sms-worker', /auth\/dist\/sms-worker\.js/],
  ['pnpm start', /scripts\/start\.mjs/],
  ['bare', /bench\/bare-server\.mjs/],
  ['postgres', /^postgres/],
  ['redis', /^redis-server/],
];

/** CPU time (user + system, in ms) used so far by each part of the system, from /proc. */
export function cpuSnapshot(loadGeneratorPid = process.pid): Map<string, number> {
  const ticksToMs = 10; // USER_HZ is 100 on Linux
  const totals = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const group = Number(entry) === loadGeneratorPid ? 'load generator' : GROUPS.find(([, pattern]) => pattern.test(cmdline) || pattern.test(cmdline.split(' ').slice(1).join(' ')))?.[0];
      if (!group) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may contain spaces): utime and stime are 14 and 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * ticksToMs;
      totals.set(group, (totals.get(group) ?? 0) + ms);
    } catch {
      // the process ended between listing and reading
    }
  }
  return totals;
}

/** CPU milliseconds per 1,000 requests for each part that used any, between two snapshots. */
export function cpuPerThousand(before: Map<string, number>, after: Map<string, number>, requests: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [group, ms] of after) {
    const used = ms - (before.get(group) ?? 0);
    if (used > 0 && requests > 0) out[group] = Math.round((used / requests) * 1000 * 10) / 10;
  }
  return out;
}
