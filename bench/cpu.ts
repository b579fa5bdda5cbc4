import { readdirSync, readFileSync } from 'node:fs';
import { builtEntry, PROCESSES } from '@refstack/shared/contracts';

const literally = (text: string) => new RegExp(text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));

/** Which part of the system a process is, from its command line. */
const GROUPS: Array<[string, RegExp]> = [
  ...PROCESSES.map((spec): [string, RegExp] => [spec.name, literally(builtEntry(spec))]),
  ['bare', /bench\/bare-server\.mjs/],
  ['postgres', /^postgres/],
  ['redis', /^redis-server/],
];

/** CPU time (user + system, in ms) used so far by each process of the system, from /proc. */
export type CpuSnapshot = Map<string, { group: string; ms: number }>;

function groupOf(cmdline: string): string | undefined {
  const args = cmdline.split(' ').slice(1).join(' ');
  return GROUPS.find(([, pattern]) => pattern.test(cmdline) || pattern.test(args))?.[0];
}

export function cpuSnapshot(loadGeneratorPid = process.pid): CpuSnapshot {
  const ticksToMs = 10; // USER_HZ is 100 on Linux
  const processes: CpuSnapshot = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const group = Number(entry) === loadGeneratorPid ? 'load generator' : groupOf(cmdline);
      if (!group) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name (which may contain spaces): utime and stime are 14 and 15,
      // the start time 22 (a reused pid is another process).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      processes.set(`${entry}@${fields[19]}`, { group, ms: (Number(fields[11]) + Number(fields[12])) * ticksToMs });
    } catch {
      // the process ended between listing and reading
    }
  }
  return processes;
}

/**
 * CPU milliseconds per 1,000 requests for each part that used any, between two snapshots. Counted
 * per process: one that started in between counts from zero; one that ended in between (an
 * autovacuum worker, a pooled connection closed) is left out rather than subtracted from the rest.
 */
export function cpuPerThousand(before: CpuSnapshot, after: CpuSnapshot, requests: number): Record<string, number> {
  const used = new Map<string, number>();
  for (const [key, { group, ms }] of after) used.set(group, (used.get(group) ?? 0) + ms - (before.get(key)?.ms ?? 0));
  const out: Record<string, number> = {};
  for (const [group, ms] of used) {
    if (ms > 0 && requests > 0) out[group] = Math.round((ms / requests) * 1000 * 10) / 10;
  }
  return out;
}
