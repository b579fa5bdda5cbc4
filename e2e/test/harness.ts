import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, createTestRedisPrefix, freePort, type Teardownable } from '@refstack/shared/testing';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Sms {
  to: string;
  text: string;
}

/**
 * The whole system as `pnpm start` runs it (`node scripts/start.mjs`), on free ports, with a
 * throwaway database and a Redis key prefix of its own. SMS are read from the worker's output.
 */
export class Stack {
  readonly lines: string[] = [];
  readonly sms: Sms[] = [];
  private waiters: Array<() => void> = [];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly ports: { gateway: number; metrics: number; auth: number; referral: number },
    /** The stack's own database and Redis key prefix, for tests that look inside. */
    readonly stores: { databaseUrl: string; redisPrefix: string },
  ) {
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        const match = /^\[sms-worker\]\s+SMS to (\+\d+): (.*)$/.exec(line);
        if (match?.[1] && match[2] !== undefined) this.sms.push({ to: match[1], text: match[2] });
        for (const wake of this.waiters.splice(0)) wake();
      });
    }
  }

  static async start(t: Teardownable, env: Record<string, string> = {}): Promise<Stack> {
    const databaseUrl = await createTestDatabase(t);
    const prefix = createTestRedisPrefix(t);
    const ports = { gateway: await freePort(), metrics: await freePort(), auth: await freePort(), referral: await freePort() };
    const child = spawn(process.execPath, ['scripts/start.mjs'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        NODE_ENV: 'development',
        LOG_LEVEL: 'info',
        GATEWAY_PORT: String(ports.gateway),
        GATEWAY_METRICS_PORT: String(ports.metrics),
        AUTH_PORT: String(ports.auth),
        REFERRAL_PORT: String(ports.referral),
        DATABASE_URL: databaseUrl,
        REDIS_KEY_PREFIX: prefix,
        ...env,
      },
    });
    const stack = new Stack(child, `http://127.0.0.1:${ports.gateway}`, ports, { databaseUrl, redisPrefix: prefix });
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
        await stack.exit;
        clearTimeout(timer);
      }
    });
    await stack.waitReady(90_000);
    return stack;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`the stack exited early:\n${this.lines.slice(-30).join('\n')}`);
      try {
        const res = await fetch(`${this.url}/health/ready`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`the stack did not become ready:\n${this.lines.slice(-30).join('\n')}`);
  }

  /** Resolves with the first line (from now on, or already seen when `since` is given) that matches. */
  async waitForLine(predicate: (line: string) => boolean, timeoutMs = 10_000, since = this.lines.length): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(since).find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('timed out waiting for a line of output');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The text of the next SMS to `to` that matches, waiting for the worker to print it. */
  async nextSms(to: string, pattern: RegExp, since = this.sms.length, timeoutMs = 10_000): Promise<string> {
    await this.waitForLine(() => this.sms.slice(since).some((m) => m.to === to && pattern.test(m.text)), timeoutMs, 0);
    return this.sms.slice(since).find((m) => m.to === to && pattern.test(m.text))?.text ?? '';
  }

  async request(method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; raw?: string } = {}) {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${this.url}${path}`, { method, headers, body });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json: json as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- test answers are read freely
  }

  /** send-code, the code from the SMS line, verify: as a user does it. */
  async signIn(phone: string, extra: Record<string, unknown> = {}) {
    const since = this.sms.length;
    const sent = await this.request('POST', '/api/v1/auth/send-code', { body: { phone } });
    if (sent.status !== 200) throw new Error(`send-code: ${sent.status} ${sent.text}`);
    const e164 = sent.json.phone as string;
    const code = /code is (\d+)/.exec(await this.nextSms(e164, /login code/, since))?.[1];
    const res = await this.request('POST', '/api/v1/auth/verify', { body: { phone, code, ...extra } });
    return { ...res, code };
  }

  /** SIGTERM to the start process; resolves with how it ended and how long it took. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const started = Date.now();
    this.child.kill('SIGTERM');
    const result = await this.exit;
    return { ...result, ms: Date.now() - started };
  }
}
