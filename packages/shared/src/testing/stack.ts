import type { ChildProcess } from 'node:child_process';
import type { Static } from 'typebox';
import type { Profile, ProblemSchema, Tokens } from '../contracts/api-schemas.js';
import { PROCESSES, type ProcessName, type ProcessSpec } from '../contracts/processes.js';
import { eventually } from './eventually.js';
import { freePort } from './free-port.js';
import { LineLog, type LineMatch, type Sms } from './line-log.js';
import {
  buildWorkspace,
  type Exit,
  isAlive,
  type NodeProcess,
  ProcessGroup,
  spawnNode,
  terminate,
} from './processes.js';
import { createTestDatabase, type Teardownable } from './test-database.js';
import { TEST_REDIS_URL } from './test-config.js';
import { createTestRedisPrefix } from './test-redis.js';

/** Every port variable the system listens on: each process's own, and the gateway's and worker's internal ones. */
export type PortVar = NonNullable<ProcessSpec['portVar']> | 'GATEWAY_METRICS_PORT' | 'SMS_WORKER_METRICS_PORT';
export const PORT_VARS: readonly PortVar[] = [
  ...PROCESSES.flatMap((spec) => (spec.portVar ? [spec.portVar] : [])),
  'GATEWAY_METRICS_PORT',
  'SMS_WORKER_METRICS_PORT',
];

export type JsonObject = Record<string, unknown>;

/**
 * An HTTP answer as a test reads it. `json` is the parsed body, typed as the caller expects it to
 * be, or an empty object when the body is not JSON, so that reading a field gives undefined.
 */
export interface HttpAnswer<T = JsonObject> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
  /** From sending the request to having read the whole body. */
  ms: number;
}

export interface RequestOptions {
  /** Sent as JSON (and as application/json unless the headers say otherwise). */
  body?: unknown;
  /** Sent as it is, for bodies that are not valid JSON on purpose. */
  raw?: string;
  headers?: Record<string, string>;
}

/** A verify answer: the sign-in on success, a problem's fields when refused. */
export type SignInBody = { created: boolean; user: Profile; tokens: Tokens } & Partial<Static<typeof ProblemSchema>>;

/** A verify answer, with the login code the SMS carried. */
export type SignIn = HttpAnswer<SignInBody> & { code: string | undefined };

function parseJson<T>(text: string): T {
  let value: unknown = {};
  try {
    if (text) value = JSON.parse(text);
  } catch {
    // not JSON: the test reads `text` instead
  }
  return value as T;
}

function inheritedEnv(): Record<string, string> {
  const entries = Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined);
  return Object.fromEntries(entries);
}

async function distinctFreePorts(count: number): Promise<number[]> {
  // Each probe frees its port again, so two probes can be handed the same one.
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * The whole system for one test: free ports, a throwaway database, a Redis key prefix of its own,
 * and every output line in `log` (SMS included). It runs in one of two ways, not both at once:
 * as `pnpm start` runs it (`startSystem`), or as four processes started, stopped, killed and
 * restarted one by one (`startAll`, `start`, `stop`, `kill`, `restart`). Everything is stopped
 * at teardown, before the database and the Redis keys go.
 */
export class TestStack {
  readonly log = new LineLog();
  readonly url: string;
  readonly ports: Readonly<Record<PortVar, number>>;
  /** The stack's own database and Redis key prefix, for tests that look inside. */
  readonly stores: { databaseUrl: string; redisPrefix: string };
  private system: NodeProcess | undefined;
  private group: ProcessGroup | undefined;

  private constructor(readonly env: Readonly<Record<string, string>>) {
    const ports: Partial<Record<PortVar, number>> = {};
    for (const name of PORT_VARS) ports[name] = Number(env[name]);
    this.ports = ports as Record<PortVar, number>;
    this.url = `http://127.0.0.1:${this.ports.GATEWAY_PORT}`;
    this.stores = { databaseUrl: env['DATABASE_URL'] ?? '', redisPrefix: env['REDIS_KEY_PREFIX'] ?? '' };
  }

  /**
   * The environment, nothing started. `overrides` win over what the stack chose; a DATABASE_URL
   * among them is used instead of a throwaway database.
   */
  static async create(t: Teardownable, overrides: Record<string, string> = {}): Promise<TestStack> {
    const databaseUrl = overrides['DATABASE_URL'] ?? (await createTestDatabase(t));
    const redisPrefix = createTestRedisPrefix(t);
    const ports = await distinctFreePorts(PORT_VARS.length);
    const stack = new TestStack({
      ...inheritedEnv(),
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      ...Object.fromEntries(PORT_VARS.map((name, i) => [name, String(ports[i])])),
      DATABASE_URL: databaseUrl,
      // The Redis whose keys under the prefix are removed afterwards (and which tests read).
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: redisPrefix,
      // Suites draw their users from a few number ranges; the SMS guard's own suites set it.
      SMS_PREFIX_PER_HOUR: '1000000',
      SMS_MIN_CONVERSION: '0',
      ...overrides,
    });
    // Teardowns run last-added first: the processes stop before their database and keys are removed.
    t.teardown(() => stack.stopAll());
    return stack;
  }

  /** `create`, then the whole system as `pnpm start` runs it, ready. */
  static async system(t: Teardownable, overrides: Record<string, string> = {}): Promise<TestStack> {
    const stack = await TestStack.create(t, overrides);
    await stack.startSystem();
    return stack;
  }

  get lines(): readonly string[] {
    return this.log.lines;
  }

  get sms(): readonly Sms[] {
    return this.log.sms;
  }

  // --- the whole system, as `pnpm start` runs it -------------------------------------------------

  /** `node scripts/start.mjs` (which builds first), until the gateway reports ready. */
  async startSystem(timeoutMs = 90_000): Promise<void> {
    if (this.system || this.group) throw new Error('the stack is running already');
    this.system = spawnNode(['scripts/start.mjs'], { env: this.env, stdout: this.log });
    await this.waitReady(timeoutMs);
  }

  /** SIGTERM to the start process; resolves with how it ended and how long that took. */
  async stopSystem(): Promise<Exit & { ms: number }> {
    if (!this.system) throw new Error('the system was not started with startSystem');
    const started = Date.now();
    const exit = await terminate(this.system, 'SIGTERM');
    return { ...exit, ms: Date.now() - started };
  }

  // --- each process on its own -------------------------------------------------------------------

  private get processes(): ProcessGroup {
    if (this.system) throw new Error('the system runs as one (startSystem): no process can be started on its own');
    if (!this.group) {
      buildWorkspace();
      this.group = new ProcessGroup({ env: this.env, stdout: this.log });
    }
    return this.group;
  }

  /** All four processes, until the gateway reports ready. */
  async startAll(timeoutMs = 30_000): Promise<void> {
    this.processes.startAll();
    await this.waitReady(timeoutMs);
  }

  start(name: ProcessName): ChildProcess {
    return this.processes.start(name);
  }

  /** Another node program with the stack's environment, its lines tagged with `label`. */
  startExtra(label: string, args: readonly string[]): ChildProcess {
    return this.processes.startExtra(label, args);
  }

  stop(name: ProcessName, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    return this.processes.stop(name, signal);
  }

  kill(name: ProcessName): Promise<Exit> {
    return this.processes.kill(name);
  }

  restart(name: ProcessName, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    return this.processes.restart(name, signal);
  }

  pid(name: ProcessName): number | undefined {
    return this.group?.pid(name);
  }

  // --- either way ----------------------------------------------------------------------------------

  /** Whatever runs, SIGKILLed after `killAfterMs` if it does not stop. */
  async stopAll(killAfterMs = 12_000): Promise<void> {
    if (this.system) await terminate(this.system, 'SIGTERM', killAfterMs);
    await this.group?.stopAll(killAfterMs);
  }

  /** Until the gateway answers /health/ready with 200; gives up at once when a process died. */
  async waitReady(timeoutMs = 20_000): Promise<number> {
    return this.waitFor(
      async () => {
        if (this.system && !isAlive(this.system.child)) throw new Error('the start process exited');
        const crashed = this.group?.crashed() ?? [];
        if (crashed.length > 0) throw new Error(`${crashed.join(', ')} exited`);
        const res = await fetch(`${this.url}/health/ready`).catch(() => undefined);
        return res?.status === 200;
      },
      timeoutMs,
      'the stack to be ready',
    );
  }

  /** Polls the condition until it holds and says how long that took; the error shows the last lines. */
  async waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<number> {
    try {
      return await eventually(what, check, timeoutMs, 100);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`${message} (waiting for ${what}); the last lines:\n${this.log.tail()}`, { cause: error });
    }
  }

  waitForLine(match: LineMatch, timeoutMs = 10_000, since?: number): Promise<string> {
    return this.log.waitForLine(match, timeoutMs, since);
  }

  /** The text of the next SMS to `to` that matches, waiting for the worker to print it. */
  nextSms(to: string, pattern: RegExp, since?: number, timeoutMs = 10_000): Promise<string> {
    return this.log.nextSms(to, pattern, since, timeoutMs);
  }

  /** The code of the next login SMS to `to`, whatever its language. */
  nextLoginCode(to: string, since?: number, timeoutMs = 10_000): Promise<string> {
    return this.log.nextLoginCode(to, since, timeoutMs);
  }

  /** The code of the latest login SMS to `phone`, if one was printed. */
  smsCode(phone: string): string | undefined {
    return this.log.smsCode(phone);
  }

  // --- HTTP through the gateway --------------------------------------------------------------------

  async request<T = JsonObject>(method: string, path: string, options: RequestOptions = {}): Promise<HttpAnswer<T>> {
    const headers: Record<string, string> = { ...options.headers };
    let body = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const started = Date.now();
    const res = await fetch(`${this.url}${path}`, { method, headers, body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: parseJson<T>(text), ms: Date.now() - started };
  }

  post<T = JsonObject>(path: string, body: unknown): Promise<HttpAnswer<T>> {
    return this.request<T>('POST', path, { body });
  }

  /** send-code, the code from the SMS line, verify: as a user does it. */
  async signIn(phone: string, extra: Record<string, unknown> = {}): Promise<SignIn> {
    const since = this.log.sms.length;
    const sent = await this.post<{ phone?: string }>('/api/v1/auth/send-code', { phone });
    if (sent.status !== 200 || sent.json.phone === undefined) throw new Error(`send-code: ${sent.status} ${sent.text}`);
    const code = await this.nextLoginCode(sent.json.phone, since);
    const res = await this.post<SignInBody>('/api/v1/auth/verify', { phone, code, ...extra });
    return { ...res, code };
  }
}
