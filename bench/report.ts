/** What the bench tells: its progress lines, the results file and the table of the latest full run. */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type autocannon from 'autocannon';
import type { Alternated, RssTrend, Scenario, SmsLatency } from './scenarios.js';

export const log = (line: string): void => {
  process.stdout.write(`[bench] ${line}\n`);
};

/**
 * Requests per second over the run's duration: a fixed duration, or for a fixed amount (the write
 * scenarios) the time to its last answer (`Bench.load`).
 */
export const rate = (r: autocannon.Result): number => r.requests.total / Math.max(r.duration, 0.001);

export interface ScenarioSummary {
  scenario: string;
  via: Scenario['via'];
  requests_per_sec: number;
  p50_ms: number;
  p99_ms: number;
  bare_alongside_per_sec: number;
  ratio_to_bare: number | null;
  total: number;
  non_2xx: number;
  errors: number;
  cpu_ms_per_1000_requests: Record<string, number>;
  /** Times each part's main thread was switched out while it could have run, per request. */
  preempted_per_request?: Record<string, number>;
}

export interface Machine {
  cpus: number;
  cpu_model: string | undefined;
  memory_gb: number;
  node: string;
  postgres: string | undefined;
  redis: string | undefined;
}

/** The shape of every bench/results/<date>.json. */
export interface Results {
  date: string;
  mode: 'quick' | 'full';
  machine: Machine;
  connections: number;
  duration_s: number;
  scenarios: ScenarioSummary[];
  send_code_to_sms_ms: SmsLatency;
  profile_100000_invitees_alternated?: Alternated;
  rss_profile_soak?: Record<string, RssTrend>;
}

export interface Measured {
  quick: boolean;
  connections: number;
  durationSeconds: number;
  scenarios: Scenario[];
  smsLatency: SmsLatency;
  alternated: Alternated | undefined;
  soak: Record<string, RssTrend> | undefined;
}

/** One scenario against its reference: the bare server alongside it, else the bare scenario's rate. */
export function summary(s: Scenario, bare: number): ScenarioSummary {
  const r = s.result;
  const reference = s.bareAlongside ?? bare;
  return {
    scenario: s.name,
    via: s.via,
    requests_per_sec: Math.round(rate(r)),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    bare_alongside_per_sec: Math.round(reference),
    ratio_to_bare: reference > 0 ? Math.round((rate(r) / reference) * 1000) / 1000 : null,
    total: r.requests.total,
    non_2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    cpu_ms_per_1000_requests: s.cpu,
    preempted_per_request: s.preempted,
  };
}

export async function machine(adminDatabaseUrl: string, redisUrl: string): Promise<Machine> {
  const admin = new pg.Client({ connectionString: adminDatabaseUrl });
  await admin.connect();
  const postgres = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  await admin.end();
  const redis = new Redis(redisUrl);
  const info = await redis.info('server');
  redis.disconnect();
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    postgres,
    redis: /redis_version:(\S+)/.exec(info)?.[1],
  };
}

export function results(measured: Measured, on: Machine): Results {
  const bareResult = measured.scenarios.find((s) => s.via === 'bare')?.result;
  const bareRate = bareResult ? rate(bareResult) : 0;
  return {
    date: new Date().toISOString(),
    mode: measured.quick ? 'quick' : 'full',
    machine: on,
    connections: measured.connections,
    duration_s: measured.durationSeconds,
    scenarios: measured.scenarios.map((s) => summary(s, bareRate)),
    send_code_to_sms_ms: measured.smsLatency,
    ...(measured.alternated ? { profile_100000_invitees_alternated: measured.alternated } : {}),
    ...(measured.soak ? { rss_profile_soak: measured.soak } : {}),
  };
}

/**
 * Writes `<date>.json` (`<date>-quick.json` in quick mode) into the results folder and, for a full
 * run only, `latest.md`: a quick run proves the bench works, its numbers are not worth a table.
 */
export function writeResults(resultsDir: string, r: Results): string[] {
  const quick = r.mode === 'quick';
  const json = join(resultsDir, `${r.date.slice(0, 19).replace(/:/g, '-')}${quick ? '-quick' : ''}.json`);
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  if (quick) return [json];
  const latest = join(resultsDir, 'latest.md');
  writeFileSync(latest, latestMarkdown(r));
  return [json, latest];
}

/**
 * Connection errors fail the run; a rare 503 (a serializable retry budget spent under 50
 * concurrent writers) is reported in the table, more than 1% fails the run.
 */
export function failures(r: Results): string[] {
  return r.scenarios
    .filter((s) => s.errors > 0 || s.non_2xx > s.total * 0.01)
    .map((s) => `${s.scenario} (${s.non_2xx} non-2xx, ${s.errors} errors)`);
}

export function latestMarkdown(r: Results): string {
  return [
    '# Latest full run',
    '',
    'Written by `pnpm bench` (not by `--quick` or `--only`); how to read it: [../README.md](../README.md).',
    '',
    resultsTable(r),
    '',
  ].join('\n');
}

/** CPU time per request of the parts that matter most, in µs (= ms per 1,000 requests). */
function cpuCell(cpu: Record<string, number>): string {
  const parts = ['gateway', 'referral', 'auth', 'postgres', 'load generator'];
  return parts.map((part) => Math.round(cpu[part] ?? 0)).join(' / ');
}

const share = (ratio: number) => `${Math.round(ratio * 1000) / 10}%`;

export function resultsTable(r: Results): string {
  const m = r.machine;
  const alt = r.profile_100000_invitees_alternated;
  const sms = r.send_code_to_sms_ms;
  const rows = r.scenarios.map(
    (s) =>
      `| ${[
        s.scenario,
        s.via,
        s.requests_per_sec,
        s.p50_ms,
        s.p99_ms,
        s.bare_alongside_per_sec,
        s.ratio_to_bare === null ? '' : share(s.ratio_to_bare),
        s.non_2xx,
        cpuCell(s.cpu_ms_per_1000_requests),
      ].join(' | ')} |`,
  );
  const soak = r.rss_profile_soak
    ? [
        '',
        'RSS during a 5-minute `GET /api/v1/profile` run that follows 2 minutes of the same load ' +
          '(mean of the first minute against the last):',
        '',
        '| process | first minute (MB) | last minute (MB) | change |',
        '| --- | --- | --- | --- |',
        ...Object.entries(r.rss_profile_soak).map(
          ([name, t]) => `| ${name} | ${t.first_minute_mb} | ${t.last_minute_mb} | ${t.change_pct}% |`,
        ),
      ]
    : [];
  return [
    `Latest full run: ${r.date} on ${m.cpus} cores (${m.cpu_model}), ${m.memory_gb} GiB, Node ${m.node}, ` +
      `PostgreSQL ${m.postgres}, Redis ${m.redis}; ${r.connections} connections, ${r.duration_s} s per scenario, ` +
      'load generator on the same machine.',
    '',
    '| scenario | via | req/s | p50 ms | p99 ms | bare req/s alongside | of bare | non-2xx ' +
      '| CPU µs per request: gateway / referral / auth / postgres / load generator |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `send-code answer → SMS line printed, at idle: p50 ${sms.p50} ms, p99 ${sms.p99} ms (${sms.samples} samples).`,
    ...(alt
      ? [
          '',
          `GET /api/v1/profile through the gateway, the owner of 100,000 invitees against an ordinary user, ` +
            `alternated in ${alt.rounds * 2} slices of ${alt.slice_s} s: ${alt.invitees_100000_per_sec} against ` +
            `${alt.ordinary_per_sec} req/s, ${share(alt.ratio)}.`,
        ]
      : []),
    ...soak,
  ].join('\n');
}
