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

/**
 * For each process of the system, from /proc: the CPU time (user + system, in ms) used so far, and
 * how often its main thread was switched out while it could have gone on running (preempted).
 */
export type CpuSnapshot = Map<string, { group: string; ms: number; preempted: number }>;

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
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const preempted = Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0);
      processes.set(`${entry}@${fields[19]}`, {
        group,
        ms: (Number(fields[11]) + Number(fields[12])) * ticksToMs,
        preempted,
      });
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
  return perRequest(before, after, requests, 'ms', 1000, 10);
}

/**
 * Preemptions per request for each part, between two snapshots, counted as CPU time is. On a
 * machine with fewer cores than processes, a process that wakes another is often switched out for
 * it at once; a CPU profile then counts the wait as whatever the process was doing (often a write).
 */
export function preemptedPerRequest(before: CpuSnapshot, after: CpuSnapshot, requests: number): Record<string, number> {
  return perRequest(before, after, requests, 'preempted', 1, 100);
}

function perRequest(
  before: CpuSnapshot,
  after: CpuSnapshot,
  requests: number,
  field: 'ms' | 'preempted',
  per: number,
  precision: number,
): Record<string, number> {
  const used = new Map<string, number>();
  for (const [key, sample] of after) {
    used.set(sample.group, (used.get(sample.group) ?? 0) + sample[field] - (before.get(key)?.[field] ?? 0));
  }
  const out: Record<string, number> = {};
  for (const [group, amount] of used) {
    if (amount > 0 && requests > 0) out[group] = Math.round((amount / requests) * per * precision) / precision;
  }
  return out;
}
