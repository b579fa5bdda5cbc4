import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, createTestRedisPrefix, freePort, type Teardownable } from '@refstack/shared/testing';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const ENTRY = {
  referral: 'services/referral/dist/server.js',
  auth: 'services/auth/dist/server.js',
  'sms-worker': 'services/auth/dist/sms-worker.js',
  gateway: 'services/gateway/dist/server.js',
} as const;
export type Name = keyof typeof ENTRY;

/**
 * The four processes of `pnpm start` (same entry points, same environment), each started on its
 * own so that a fault test can stop, kill and restart one of them.
 */
export class Processes {
  readonly lines: string[] = [];
  private readonly children = new Map<Name, ChildProcess>();
  readonly url: string;

  private constructor(readonly env: Record<string, string>) {
    this.url = `http://127.0.0.1:${env['GATEWAY_PORT']}`;
  }

  static async create(t: Teardownable, env: Record<string, string> = {}): Promise<Processes> {
    const build = spawnSync('pnpm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('build failed');
    const processes = new Processes({
      ...(process.env as Record<string, string>),
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      DATABASE_URL: await createTestDatabase(t),
      REDIS_KEY_PREFIX: createTestRedisPrefix(t),
      GATEWAY_PORT: String(await freePort()),
      GATEWAY_METRICS_PORT: String(await freePort()),
      AUTH_PORT: String(await freePort()),
      REFERRAL_PORT: String(await freePort()),
      ...env,
    });
    t.teardown(() => processes.stopAll());
    return processes;
  }

  start(name: Name): void {
    const child = spawn(process.execPath, [ENTRY[name]], { cwd: ROOT, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (line) => this.lines.push(`[${name}] ${line}`));
    this.children.set(name, child);
  }

  /** Any other program with the stack's environment (a fault-test fixture). */
  startExtra(name: string, args: string[]): ChildProcess {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (line) => this.lines.push(`[${name}] ${line}`));
    return child;
  }

  async startAll(): Promise<void> {
    for (const name of Object.keys(ENTRY) as Name[]) this.start(name);
    await this.waitFor(async () => (await fetch(`${this.url}/health/ready`).catch(() => undefined))?.status === 200, 30_000, 'the stack to be ready');
  }

  async stop(name: Name, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.children.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null };
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
    child.kill(signal);
    return exited;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.children.keys()].map((name) => this.stop(name)));
  }

  async waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<number> {
    const started = Date.now();
    while (!(await check())) {
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}:\n${this.lines.slice(-20).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return Date.now() - started;
  }

  smsCode(phone: string): string | undefined {
    const line = [...this.lines].reverse().find((l) => l.startsWith('[sms-worker] SMS to ' + phone + ':'));
    return /code is (\d+)/.exec(line ?? '')?.[1];
  }

  async post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown>; ms: number }> {
    const started = Date.now();
    const res = await fetch(`${this.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, ms: Date.now() - started };
  }
}

/** A throwaway redis-server with the append-only file on, on a free port, restartable. */
export class ThrowawayRedis {
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'refstack-redis-'));
  private constructor(readonly port: number) {}

  static async start(t: Teardownable): Promise<ThrowawayRedis> {
    const redis = new ThrowawayRedis(await freePort());
    t.teardown(async () => {
      await redis.stop('SIGKILL');
      rmSync(redis.dir, { recursive: true, force: true });
    });
    await redis.up();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    const started = Date.now();
    for (;;) {
      const ping = spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' });
      if (ping.stdout.trim() === 'PONG') return;
      if (Date.now() - started > 10_000) throw new Error('redis did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }
}

/**
 * A throwaway PostgreSQL cluster (initdb into a temporary folder, run as the `postgres` user when
 * this process is root), on a free port, restartable. Trust authentication on loopback only.
 */
export class ThrowawayPostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'refstack-pg-'));
  private constructor(readonly port: number, private readonly bin: string) {}

  private run(command: string, args: string[]): void {
    const asPostgres = process.getuid?.() === 0;
    const result = asPostgres
      ? spawnSync('su', ['postgres', '-c', [command, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')], { encoding: 'utf8' })
      : spawnSync(command, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  }

  static async start(t: Teardownable): Promise<ThrowawayPostgres> {
    const version = spawnSync('sh', ['-c', 'ls /usr/lib/postgresql | sort -n | tail -1'], { encoding: 'utf8' }).stdout.trim();
    const pg = new ThrowawayPostgres(await freePort(), `/usr/lib/postgresql/${version}/bin`);
    if (process.getuid?.() === 0) spawnSync('chown', ['postgres:postgres', pg.dir]);
    pg.run(`${pg.bin}/initdb`, ['-D', `${pg.dir}/data`, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    t.teardown(() => {
      pg.stop('immediate');
      rmSync(pg.dir, { recursive: true, force: true });
    });
    pg.up();
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/referral`;
  }

  up(): void {
    this.run(`${this.bin}/pg_ctl`, ['-D', `${this.dir}/data`, '-w', '-l', `${this.dir}/log`, '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`, 'start']);
  }

  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    try {
      this.run(`${this.bin}/pg_ctl`, ['-D', `${this.dir}/data`, '-w', '-m', mode, 'stop']);
    } catch {
      // already stopped
    }
  }
}
