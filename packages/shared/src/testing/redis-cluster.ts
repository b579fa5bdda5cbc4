import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { freePort } from './free-port.js';
import type { Teardownable } from './test-database.js';

/** One redis-server of a throwaway cluster. */
export interface ClusterNode {
  port: number;
  process: ChildProcess | undefined;
}

const cli = (port: number, ...args: string[]) =>
  spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();

/**
 * A real Redis Cluster on this machine: `masters` masters with `replicas` replicas each
 * (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`), append-only file
 * on with fsync every write, a node timeout of 2 s so that a killed master's replica takes over
 * within seconds. Every node is killed and its files removed at teardown.
 */
export class ThrowawayRedisCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'refstack-cluster-'));
  readonly nodes: ClusterNode[];

  private constructor(ports: number[]) {
    this.nodes = ports.map((port) => ({ port, process: undefined }));
  }

  static async start(t: Teardownable, masters = 3, replicas = 1): Promise<ThrowawayRedisCluster> {
    const ports: number[] = [];
    while (ports.length < masters * (1 + replicas)) {
      const port = await freePort();
      // The cluster bus listens on port + 10000, which must be free too.
      if (port < 55_000 && !ports.includes(port)) ports.push(port);
    }
    const cluster = new ThrowawayRedisCluster(ports);
    t.teardown(async () => {
      await Promise.all(cluster.nodes.map((node) => cluster.kill(node.port)));
      rmSync(cluster.dir, { recursive: true, force: true });
    });
    await Promise.all(cluster.nodes.map((node) => cluster.up(node.port)));
    const created = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await eventually(
      'every node to see the cluster ok with all slots, every replica in sync',
      () =>
        ports.every((port) => /cluster_state:ok/.test(cli(port, 'cluster', 'info'))) &&
        ports.every((port) => {
          const info = cli(port, 'info', 'replication');
          return /role:master/.test(info) || /master_link_status:up/.test(info);
        }),
      60_000,
      200,
    );
    return cluster;
  }

  /** host:port of every node, as REDIS_CLUSTER_NODES takes them. */
  get seeds(): string {
    return this.nodes.map((node) => `127.0.0.1:${node.port}`).join(',');
  }

  get seedList(): Array<{ host: string; port: number }> {
    return this.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }));
  }

  /** Starts (or restarts, keeping its files) the node on `port`. */
  async up(port: number): Promise<void> {
    const dir = join(this.dir, String(port));
    mkdirSync(dir, { recursive: true });
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--cluster-enabled', 'yes'];
    args.push('--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000');
    // A replica takes over however long ago it last heard from its master (a test kills masters
    // moments after the cluster forms).
    args.push('--cluster-replica-validity-factor', '0');
    args.push('--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction');
    const node = this.nodes.find((n) => n.port === port);
    if (!node) throw new Error(`no node on ${port}`);
    node.process = spawn('redis-server', args, { stdio: 'ignore' });
    await eventually(`redis-server on ${port} to answer PONG`, () => cli(port, 'ping') === 'PONG', 10_000, 100);
  }

  /** SIGKILL: the node is gone without a word, as when its machine dies. */
  async kill(port: number): Promise<void> {
    const child = this.nodes.find((n) => n.port === port)?.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Whether every replica of the master on `port` has the master's replication offset. */
  replicaCaughtUp(port: number): boolean {
    const info = cli(port, 'info', 'replication');
    const offset = Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? -1);
    const replicas = [...info.matchAll(/slave\d+:.*offset=(\d+)/g)].map((m) => Number(m[1]));
    return replicas.length > 0 && replicas.every((replica) => replica >= offset);
  }

  /**
   * Whether the master on `port` has a replica online and streaming (its last acknowledgement at
   * most a second old). Under a steady stream of writes the acknowledged offset always trails the
   * master's, so `replicaCaughtUp` cannot be waited for then.
   */
  replicaStreaming(port: number): boolean {
    const info = cli(port, 'info', 'replication');
    return [...info.matchAll(/slave\d+:.*state=(\w+).*lag=(\d+)/g)].some((m) => m[1] === 'online' && Number(m[2]) <= 1);
  }

  /** The master that serves `key`'s slot. */
  masterOf(key: string): number {
    const anyUp = this.nodes.find((n) => cli(n.port, 'ping') === 'PONG');
    if (!anyUp) throw new Error('no node answers');
    const slot = Number(cli(anyUp.port, 'cluster', 'keyslot', key));
    for (const line of cli(anyUp.port, 'cluster', 'nodes').split('\n')) {
      const [, address = '', flags = '', , , , , , ...ranges] = line.split(' ');
      if (!flags.includes('master') || flags.includes('fail')) continue;
      for (const range of ranges) {
        const [from, to = from] = range.split('-').map(Number);
        if (from !== undefined && to !== undefined && slot >= from && slot <= to)
          return Number(address.split(':')[1]?.split('@')[0]);
      }
    }
    throw new Error(`no master serves slot ${slot}`);
  }
}
