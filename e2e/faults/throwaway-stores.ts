import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, freePort, type Teardownable } from '@refstack/shared/testing';

// Stores of a fault test's own, which it may kill and bring back; the shared servers must stay up.

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
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes'];
    args.push('--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction');
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    const ping = () => spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' }).stdout.trim();
    await eventually(`redis-server on port ${this.port} to answer PONG`, () => ping() === 'PONG', 10_000, 100);
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
  private constructor(
    readonly port: number,
    private readonly bin: string,
  ) {}

  private run(command: string, args: string[]): void {
    const asPostgres = process.getuid?.() === 0;
    const quoted = [command, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const result = asPostgres
      ? spawnSync('su', ['postgres', '-c', quoted], { encoding: 'utf8' })
      : spawnSync(command, args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  }

  static async start(t: Teardownable): Promise<ThrowawayPostgres> {
    const newest = spawnSync('sh', ['-c', 'ls /usr/lib/postgresql | sort -n | tail -1'], { encoding: 'utf8' });
    const version = newest.stdout.trim();
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
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`;
    this.run(`${this.bin}/pg_ctl`, ['-D', `${this.dir}/data`, '-w', '-l', `${this.dir}/log`, '-o', options, 'start']);
  }

  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    try {
      this.run(`${this.bin}/pg_ctl`, ['-D', `${this.dir}/data`, '-w', '-m', mode, 'stop']);
    } catch {
      // already stopped
    }
  }
}
