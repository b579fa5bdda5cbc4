/**
 * What the bench measures and how: autocannon against the system, each scenario preceded by a
 * measurement of the bare server, the two profile reads also alternated, the RSS soak, and the
 * send-code → SMS latency at idle.
 */
import autocannon from 'autocannon';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { loginCodeIn, parseSmsLine } from '@refstack/shared/contracts';
import { cpuPerThousand, cpuSnapshot, preemptedPerRequest } from './cpu.js';
import { log, rate } from './report.js';
import type { Seeded } from './seed.js';
import type { StackProcess } from './stack.js';

export interface Settings {
  quick: boolean;
  /** Only the bare server and the read scenarios whose `<name> <via>` contains this; no results. */
  only: string | undefined;
  durationSeconds: number;
  connections: number;
}

export interface Scenario {
  name: string;
  via: 'gateway' | 'referral' | 'bare';
  result: autocannon.Result;
  /** CPU ms per 1,000 requests by part of the system (load generator included). */
  cpu: Record<string, number>;
  /** Times each part was preempted per request. */
  preempted: Record<string, number>;
  /** The bare server's requests/s measured right before this scenario: its reference. */
  bareAlongside?: number;
}

/** The 100,000-invitee profile read against an ordinary one, in alternating slices through the gateway. */
export interface Alternated {
  slice_s: number;
  rounds: number;
  ordinary_per_sec: number;
  invitees_100000_per_sec: number;
  ratio: number;
}

/** One process's RSS over the soak: first and last minute's means, and every 5-second sample. */
export interface RssTrend {
  first_minute_mb: number;
  last_minute_mb: number;
  change_pct: number;
  every_5_s_mb: number[];
}

export interface SmsLatency {
  samples: number;
  p50: number;
  p99: number;
}

/** Where the load goes, and as whom. */
export interface Target {
  gateway: string;
  referral: string;
  bare: string;
  /** Authorization headers of the seeded users. */
  ordinary: string;
  popular: string;
}

const percent = (share: number) => Math.round(share * 1000) / 10;

export class Bench {
  readonly scenarios: Scenario[] = [];

  constructor(
    readonly settings: Settings,
    private readonly bareUrl: string,
  ) {}

  /**
   * A fixed amount of requests (consumable inputs) or a fixed duration, never both. autocannon ends
   * a fixed-amount run at its next one-second tick after the last answer, so its own duration would
   * count up to a second of waiting (a rate up to 12% low for a run of 8 s); such a run lasts here
   * until its last answer.
   */
  load(opts: autocannon.Options): Promise<autocannon.Result> {
    const fixedAmount = opts.amount !== undefined;
    const duration = fixedAmount ? {} : { duration: this.settings.durationSeconds };
    return new Promise((resolve, reject) => {
      const started = performance.now();
      let lastAnswer = started;
      const instance = autocannon({ connections: this.settings.connections, ...duration, ...opts }, (err, result) => {
        if (err) return reject(err);
        resolve(fixedAmount ? { ...result, duration: (lastAnswer - started) / 1000 } : result);
      });
      if (fixedAmount) {
        instance.on('response', () => {
          lastAnswer = performance.now();
        });
      }
    });
  }

  selected(name: string, via: Scenario['via']): boolean {
    const only = this.settings.only;
    return only === undefined || via === 'bare' || `${name} ${via}`.includes(only);
  }

  /**
   * A scenario whose inputs a later selected one needs: measured when selected itself, otherwise
   * only run (`--only=verify` still needs the codes send-code makes).
   */
  async measureOrRun(name: string, via: Scenario['via'], opts: autocannon.Options, needed: boolean): Promise<void> {
    if (this.selected(name, via)) return this.measure(name, via, opts);
    if (needed) await this.load(opts);
  }

  async measure(name: string, via: Scenario['via'], opts: autocannon.Options): Promise<void> {
    if (!this.selected(name, via)) return;
    log(`${name} (${via})`);
    // The machine's speed drifts within minutes, so each scenario gets its own bare measurement
    // immediately before it and is compared with that.
    const bareAlongside =
      via === 'bare'
        ? undefined
        : rate(await this.load({ url: `${this.bareUrl}/hello`, duration: this.settings.quick ? 2 : 5 }));
    const before = cpuSnapshot();
    const result = await this.load(opts);
    const after = cpuSnapshot();
    const cpu = cpuPerThousand(before, after, result.requests.total);
    const preempted = preemptedPerRequest(before, after, result.requests.total);
    this.scenarios.push({
      name,
      via,
      result,
      cpu,
      preempted,
      ...(bareAlongside === undefined ? {} : { bareAlongside }),
    });

    const statuses = Object.entries(result.statusCodeStats ?? {})
      .map(([code, s]) => `${code}×${s.count}`)
      .join(' ');
    const share =
      bareAlongside === undefined
        ? ''
        : ` (${percent(rate(result) / bareAlongside)}% of bare at ${Math.round(bareAlongside)} just before)`;
    log(
      `  ${Math.round(rate(result))} req/s${share}, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ` +
        `statuses ${statuses}, errors ${result.errors}`,
    );
    log(
      `  CPU ms per 1,000 requests: ${Object.entries(cpu)
        .map(([part, ms]) => `${part} ${ms}`)
        .join(', ')}`,
    );
    log(
      `  preempted per request: ${Object.entries(preempted)
        .map(([part, times]) => `${part} ${times}`)
        .join(', ')}`,
    );
  }
}

/** So that JIT and pools are comparable for every scenario. */
export async function warmUp(bench: Bench, target: Target): Promise<void> {
  await bench.load({ url: `${target.bare}/hello`, duration: 2 });
  const profile = `${target.gateway}/api/v1/profile`;
  await bench.load({ url: profile, headers: { authorization: target.ordinary }, duration: 2 });
}

/**
 * Two minutes of profile reads, then five more sampling each process's RSS every 5 s. Run before
 * any other scenario, so that memory another one leaves behind (a page of 100,000 invitees, the
 * worker's after tens of thousands of jobs) and gives back later is not read as the profile path's
 * own trend; and after two minutes of the same load, so that neither is the memory every process
 * gives back after start-up, nor the gateway's heap before V8's first full collection under load
 * (at about 90–100 s here), after which it settles.
 */
export async function soak(bench: Bench, target: Target, processes: readonly StackProcess[]) {
  log('soak: two minutes of GET /api/v1/profile before sampling');
  const profileRead = { url: `${target.gateway}/api/v1/profile`, headers: { authorization: target.ordinary } };
  await bench.load({ ...profileRead, duration: 120 });

  // Named by the last three parts of the entry point, as in every earlier results file.
  const sampled = processes.map((p) => ({ pid: p.pid, name: p.entry.split('/').slice(-3).join('/') }));
  const samples = new Map<string, Array<{ t: number; rss: number }>>();
  const started = Date.now();
  const timer = setInterval(() => {
    for (const { pid, name } of sampled) {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
        const list = samples.get(name) ?? [];
        list.push({ t: Date.now() - started, rss });
        samples.set(name, list);
      } catch {
        // the process is gone; its series just ends
      }
    }
  }, 5000);
  log('soak: 5 minutes of GET /api/v1/profile');
  await bench.load({ ...profileRead, duration: 300 });
  clearInterval(timer);

  const trends: Record<string, RssTrend> = {};
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  for (const [name, list] of samples) {
    const first = mean(list.filter((s) => s.t <= 60_000).map((s) => s.rss));
    const last = mean(list.filter((s) => s.t >= 240_000).map((s) => s.rss));
    trends[name] = {
      first_minute_mb: Math.round(first),
      last_minute_mb: Math.round(last),
      change_pct: Math.round(((last - first) / first) * 1000) / 10,
      every_5_s_mb: list.map((s) => Math.round(s.rss)),
    };
  }
  return trends;
}

/** Scenarios that consume nothing: the same request over and over for a fixed duration. */
export async function readScenarios(bench: Bench, target: Target): Promise<void> {
  const profile = (via: 'gateway' | 'referral', authorization: string) => ({
    url: `${via === 'gateway' ? target.gateway : target.referral}/api/v1/profile`,
    headers: { authorization },
  });
  await bench.measure('bare Fastify hello', 'bare', { url: `${target.bare}/hello` });
  await bench.measure('GET /api/v1/profile', 'gateway', profile('gateway', target.ordinary));
  await bench.measure('GET /api/v1/profile', 'referral', profile('referral', target.ordinary));
  await bench.measure('GET /api/v1/profile, 100,000 invitees', 'gateway', profile('gateway', target.popular));
  await bench.measure('GET /api/v1/profile/invited (page 1)', 'gateway', {
    url: `${target.gateway}/api/v1/profile/invited`,
    headers: { authorization: target.popular },
  });
}

/**
 * The two profile scenarios run a minute apart, and the machine's speed can drift by more than the
 * 10% the goal allows between them. So the two reads also run in alternation, in short slices
 * ordered ABBA (a steady drift then falls on both alike), and their totals are compared.
 */
export async function alternateProfiles(bench: Bench, target: Target): Promise<Alternated | undefined> {
  if (!bench.selected('GET /api/v1/profile, 100,000 invitees', 'gateway')) return undefined;
  log('GET /api/v1/profile, 100,000 invitees against an ordinary one, alternated');
  const sliceSeconds = bench.settings.quick ? 1 : 3;
  const rounds = bench.settings.quick ? 2 : 6;
  const totals = { ordinary: { requests: 0, seconds: 0 }, popular: { requests: 0, seconds: 0 } };
  for (let round = 0; round < rounds; round += 1) {
    const order = round % 2 === 0 ? (['ordinary', 'popular'] as const) : (['popular', 'ordinary'] as const);
    for (const who of order) {
      const result = await bench.load({
        url: `${target.gateway}/api/v1/profile`,
        headers: { authorization: target[who] },
        duration: sliceSeconds,
      });
      if (result.errors > 0 || result.non2xx > 0) {
        throw new Error(`alternated profile reads failed: ${result.errors} errors, ${result.non2xx} non-2xx`);
      }
      totals[who].requests += result.requests.total;
      totals[who].seconds += result.duration;
    }
  }
  const ordinaryRate = totals.ordinary.requests / totals.ordinary.seconds;
  const popularRate = totals.popular.requests / totals.popular.seconds;
  const alternated: Alternated = {
    slice_s: sliceSeconds,
    rounds,
    ordinary_per_sec: Math.round(ordinaryRate),
    invitees_100000_per_sec: Math.round(popularRate),
    ratio: Math.round((popularRate / ordinaryRate) * 1000) / 1000,
  };
  const { invitees_100000_per_sec: popular, ordinary_per_sec: ordinary } = alternated;
  log(`  ${popular} against ${ordinary} req/s: ${percent(alternated.ratio)}%`);
  return alternated;
}

const SEND_CODE = 'POST /api/v1/auth/send-code';
const VERIFY_NEW = 'POST /api/v1/auth/verify, new users';
const VERIFY_RETURNING = 'POST /api/v1/auth/verify, returning users';
const REFRESH = 'POST /api/v1/auth/refresh';
const ACTIVATE_SPREAD = 'PUT /api/v1/profile/invite, 100 inviters';
const ACTIVATE_POPULAR = 'PUT /api/v1/profile/invite, one popular inviter';

/**
 * Scenarios whose every request uses a fresh input once: send-code a fresh phone, verify a code the
 * SMS worker printed for it (a new user), send-code and verify again for those users (returning),
 * refresh a token those sign-ins returned, activation by a user who has not activated a code yet,
 * of 100 inviters' codes and then all of one inviter's code.
 */
export async function writeScenarios(
  bench: Bench,
  target: Target,
  sms: SmsLines,
  seeded: Seeded,
  accessToken: (user: { id: string; phone: string }) => string,
): Promise<void> {
  const json = { 'content-type': 'application/json' };
  const consumed = bench.settings.quick ? 1500 : 20000;
  const wanted = (name: string) => bench.selected(name, 'gateway');
  const signInsWanted = [VERIFY_NEW, VERIFY_RETURNING, REFRESH].some(wanted);

  const phones = Array.from({ length: 60000 }, (_, i) => `+7912${String(i).padStart(7, '0')}`);
  let sendIndex = 0;
  await bench.measureOrRun(
    SEND_CODE,
    'gateway',
    {
      url: `${target.gateway}/api/v1/auth/send-code`,
      method: 'POST',
      headers: json,
      requests: [
        {
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ phone: phones[sendIndex++ % phones.length] }) }),
        },
      ],
      ...(wanted(SEND_CODE) ? {} : { amount: consumed }),
    },
    signInsWanted,
  );
  // The worker prints what was queued a little after the answers.
  await sms.waitFor(phones.slice(0, Math.min(sendIndex, phones.length)), new Map());

  const verify = (name: string, withCodes: Array<[string, string]>, signedIn: string[], refresh: string[]) => {
    let index = 0;
    return bench.measureOrRun(
      name,
      'gateway',
      {
        url: `${target.gateway}/api/v1/auth/verify`,
        method: 'POST',
        amount: Math.min(withCodes.length, consumed),
        headers: json,
        requests: [
          {
            setupRequest: (req) => {
              const [phone, code] = withCodes[index++ % withCodes.length] ?? ['', ''];
              return { ...req, body: JSON.stringify({ phone, code }) };
            },
            onResponse: (status, body) => {
              if (status !== 200) return;
              const answer = JSON.parse(body) as { user: { phone: string }; tokens: { refresh: string } };
              signedIn.push(answer.user.phone);
              refresh.push(answer.tokens.refresh);
            },
          },
        ],
      },
      signInsWanted,
    );
  };

  const newUsers: string[] = [];
  const refreshTokens: string[] = [];
  if (signInsWanted) await verify(VERIFY_NEW, [...sms.codes.entries()], newUsers, refreshTokens);

  if (wanted(VERIFY_RETURNING)) {
    // New codes for the users just signed up, sent ahead (not measured), then their sign-ins.
    const before = new Map(newUsers.map((phone) => [phone, sms.arrivals.get(phone)?.length ?? 0]));
    let resendIndex = 0;
    await bench.load({
      url: `${target.gateway}/api/v1/auth/send-code`,
      method: 'POST',
      headers: json,
      amount: newUsers.length,
      requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ phone: newUsers[resendIndex++] }) }) }],
    });
    await sms.waitFor(newUsers, before);
    const resent = newUsers.filter((phone) => (sms.arrivals.get(phone)?.length ?? 0) > (before.get(phone) ?? 0));
    await verify(
      VERIFY_RETURNING,
      resent.map((phone): [string, string] => [phone, sms.codes.get(phone) ?? '']),
      [],
      [],
    );
  }

  let refreshIndex = 0;
  await bench.measure(REFRESH, 'gateway', {
    url: `${target.gateway}/api/v1/auth/refresh`,
    method: 'POST',
    amount: refreshTokens.length,
    headers: json,
    requests: [
      {
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ refresh: refreshTokens[refreshIndex++] }) }),
      },
    ],
  });

  // Each activator activates once: the first ones codes of 100 inviters in turn, the next ones all
  // the popular user's code (a code shared by a blogger), whose owner already has 100,000 invitees.
  const activators = seeded.activators.map((u) => `Bearer ${accessToken(u)}`);
  let activateIndex = 0;
  const activation = (name: string, codeOf: (i: number) => string) =>
    bench.measure(name, 'gateway', {
      url: `${target.gateway}/api/v1/profile/invite`,
      method: 'PUT',
      amount: Math.min(consumed, Math.floor(activators.length / 2)),
      requests: [
        {
          setupRequest: (req) => {
            const i = activateIndex++;
            return {
              ...req,
              headers: { ...req.headers, ...json, authorization: activators[i] ?? '' },
              body: JSON.stringify({ invite_code: codeOf(i) }),
            };
          },
        },
      ],
    });
  await activation(ACTIVATE_SPREAD, (i) => seeded.inviterCodes[i % seeded.inviterCodes.length] ?? '');
  await activation(ACTIVATE_POPULAR, () => seeded.popularCode);
}

/** send-code answered → SMS line printed, at idle: one request at a time. */
export async function smsLatency(target: Target, sms: SmsLines, quick: boolean): Promise<SmsLatency> {
  const latencies: number[] = [];
  const idlePhones = Array.from({ length: quick ? 30 : 200 }, (_, i) => `+7916${String(i).padStart(7, '0')}`);
  for (const phone of idlePhones) {
    await fetch(`${target.gateway}/api/v1/auth/send-code`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone }),
    });
    const answered = performance.now();
    while (!sms.arrivals.has(phone) && performance.now() - answered < 2000) {
      sms.scan();
      if (!sms.arrivals.has(phone)) await new Promise((resolve) => setImmediate(resolve));
    }
    const arrived = sms.arrivals.get(phone)?.[0];
    if (arrived !== undefined) latencies.push(Math.max(0, arrived - answered));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => {
    const value = latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
    return Math.round(value * 10) / 10;
  };
  return { samples: latencies.length, p50: pct(50), p99: pct(99) };
}

/**
 * The SMS lines in the system's log file: each phone's latest code, and when each of its lines was
 * first seen here. Read only when asked, never per request.
 */
export class SmsLines {
  readonly codes = new Map<string, string>();
  readonly arrivals = new Map<string, number[]>();
  private readonly fd: number;
  private offset = 0;
  private partial = '';
  // In slices: a soak run leaves hundreds of megabytes of access lines behind.
  private static readonly SLICE = 16 * 1024 * 1024;

  constructor(logFile: string) {
    this.fd = openSync(logFile, 'r');
  }

  scan(): void {
    const size = fstatSync(this.fd).size;
    while (this.offset < size) {
      const buffer = Buffer.alloc(Math.min(size - this.offset, SmsLines.SLICE));
      readSync(this.fd, buffer, 0, buffer.length, this.offset);
      this.offset += buffer.length;
      const text = this.partial + buffer.toString('utf8');
      const lastNewline = text.lastIndexOf('\n');
      this.partial = text.slice(lastNewline + 1);
      if (text.indexOf('SMS to') === -1) continue;
      const at = performance.now();
      for (const line of text.slice(0, lastNewline + 1).split('\n')) {
        const sms = line.includes('SMS to') ? parseSmsLine(line) : undefined;
        const code = sms && loginCodeIn(sms.text);
        if (!sms || !code) continue;
        this.codes.set(sms.to, code);
        const arrivals = this.arrivals.get(sms.to) ?? [];
        arrivals.push(at);
        this.arrivals.set(sms.to, arrivals);
      }
    }
  }

  /**
   * Until (nearly) every phone has an SMS line more than `before` counted, or 10 s pass: the
   * worker prints what was queued a little after the answers.
   */
  async waitFor(phones: readonly string[], before: ReadonlyMap<string, number>): Promise<void> {
    const arrived = () => phones.filter((p) => (this.arrivals.get(p)?.length ?? 0) > (before.get(p) ?? 0)).length;
    for (let i = 0; i < 100 && (this.scan(), arrived() < phones.length * 0.99); i += 1)
      await new Promise((resolve) => setTimeout(resolve, 100));
  }

  close(): void {
    closeSync(this.fd);
  }
}
