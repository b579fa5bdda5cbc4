import { builtEntry, processSpec, type ProcessName } from '@refstack/shared/contracts';
import {
  buildWorkspace,
  createTestDatabase,
  eventually,
  freePort,
  isAlive,
  LineLog,
  spawnNode,
  terminate,
  ThrowawayRedisCluster,
  type NodeProcess,
  type Teardownable,
} from '@refstack/shared/testing';

/** An instance of one of the system's processes, with the ports it listens on. */
interface Instance {
  label: string;
  name: ProcessName;
  env: Record<string, string>;
  port: number | undefined;
  running: NodeProcess | undefined;
}

async function distinctPorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function inheritedEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/**
 * More than one of everything on one machine: a Redis Cluster of 3 masters and 3 replicas, two auth
 * instances, two SMS workers, two referral instances and one gateway balancing over them, each its
 * own process with its own ports, every line in one log (SMS lines tagged with their worker).
 */
export class ScaleOutStack {
  readonly log = new LineLog();
  readonly instances = new Map<string, Instance>();
  gatewayUrl = '';
  operationsUrl = '';

  private constructor(
    readonly cluster: ThrowawayRedisCluster,
    private readonly common: Record<string, string>,
  ) {}

  static async start(t: Teardownable, overrides: Record<string, string> = {}): Promise<ScaleOutStack> {
    buildWorkspace();
    const cluster = await ThrowawayRedisCluster.start(t);
    const databaseUrl = await createTestDatabase(t);
    const [auth1, auth2, referral1, referral2, gateway, operations, metrics1, metrics2] = await distinctPorts(8);
    const common = {
      ...inheritedEnv(),
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      DATABASE_URL: databaseUrl,
      REDIS_CLUSTER_NODES: cluster.seeds,
      REDIS_KEY_PREFIX: 'scale-out',
      // Auth trusts the gateway and this test (both on loopback) to name the client.
      TRUSTED_PROXIES: '127.0.0.1',
      GATEWAY_TRUSTED_PROXIES: '127.0.0.1',
      AUTH_URLS: `http://127.0.0.1:${auth1},http://127.0.0.1:${auth2}`,
      REFERRAL_URLS: `http://127.0.0.1:${referral1},http://127.0.0.1:${referral2}`,
      GATEWAY_PORT: String(gateway),
      GATEWAY_METRICS_PORT: String(operations),
      GATEWAY_HEALTH_INTERVAL_MS: '500',
      GATEWAY_EJECT_SECONDS: '2',
      UPSTREAM_TIMEOUT_MS: '30000',
      ...overrides,
    };
    const stack = new ScaleOutStack(cluster, common);
    stack.gatewayUrl = `http://127.0.0.1:${gateway}`;
    stack.operationsUrl = `http://127.0.0.1:${operations}`;
    stack.define('referral-1', 'referral', { REFERRAL_PORT: String(referral1) }, referral1);
    stack.define('referral-2', 'referral', { REFERRAL_PORT: String(referral2) }, referral2);
    stack.define('auth-1', 'auth', { AUTH_PORT: String(auth1) }, auth1);
    stack.define('auth-2', 'auth', { AUTH_PORT: String(auth2) }, auth2);
    stack.define('sms-worker-1', 'sms-worker', { SMS_WORKER_METRICS_PORT: String(metrics1) }, undefined);
    stack.define('sms-worker-2', 'sms-worker', { SMS_WORKER_METRICS_PORT: String(metrics2) }, undefined);
    stack.define('gateway', 'gateway', {}, gateway);
    t.teardown(() => stack.stopAll());
    // One after another where the first creates something the second uses: the database's schema,
    // the development signing key in Redis.
    for (const label of ['referral-1', 'referral-2', 'auth-1', 'auth-2']) {
      stack.start(label);
      await stack.waitReady(label);
    }
    stack.start('sms-worker-1');
    stack.start('sms-worker-2');
    stack.start('gateway');
    await stack.waitFor(
      async () => (await fetch(`${stack.operationsUrl}/health/ready`).catch(() => undefined))?.status === 200,
      60_000,
      'the gateway to see every service ready',
    );
    await stack.waitFor(
      () => stack.log.lines.filter((line) => line.includes('"msg":"sms worker ready"')).length === 2,
      60_000,
      'both SMS workers',
    );
    return stack;
  }

  private define(label: string, name: ProcessName, env: Record<string, string>, port: number | undefined): void {
    this.instances.set(label, { label, name, env: { ...this.common, ...env }, port, running: undefined });
  }

  private instance(label: string): Instance {
    const instance = this.instances.get(label);
    if (!instance) throw new Error(`no instance ${label}`);
    return instance;
  }

  url(label: string): string {
    return `http://127.0.0.1:${this.instance(label).port}`;
  }

  start(label: string): void {
    const instance = this.instance(label);
    if (instance.running && isAlive(instance.running.child)) throw new Error(`${label} runs already`);
    instance.running = spawnNode(
      [builtEntry(processSpec(instance.name))],
      { env: instance.env, stdout: this.log },
      label,
    );
  }

  /** Another node program with the common environment, e.g. a fault-test fixture. */
  startExtra(label: string, args: readonly string[]): void {
    this.instances.set(label, { label, name: 'sms-worker', env: this.common, port: undefined, running: undefined });
    this.instances.get(label)!.running = spawnNode(args, { env: this.common, stdout: this.log }, label);
  }

  /** SIGTERM: the process finishes what it has in hand. */
  async stop(label: string): Promise<void> {
    const running = this.instance(label).running;
    if (running) await terminate(running, 'SIGTERM', 15_000);
  }

  async kill(label: string): Promise<void> {
    const running = this.instance(label).running;
    if (running) await terminate(running, 'SIGKILL');
  }

  async waitReady(label: string, timeoutMs = 60_000): Promise<number> {
    return this.waitFor(
      async () => {
        const running = this.instance(label).running;
        if (running && !isAlive(running.child)) throw new Error(`${label} exited`);
        return (await fetch(`${this.url(label)}/health/ready`).catch(() => undefined))?.status === 200;
      },
      timeoutMs,
      `${label} to be ready`,
    );
  }

  async waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<number> {
    try {
      return await eventually(what, check, timeoutMs, 100);
    } catch (error) {
      throw new Error(`${(error as Error).message}; the last lines:\n${this.log.tail(40)}`, { cause: error });
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.instances.values()].map((instance) =>
        instance.running ? terminate(instance.running, 'SIGTERM', 12_000) : undefined,
      ),
    );
  }

  /** A JSON request to `base` (an instance or the gateway), as the client at `ip`. */
  async call(
    base: string,
    method: string,
    path: string,
    options: { body?: unknown; ip?: string; token?: string } = {},
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const headers: Record<string, string> = {};
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.ip) headers['x-forwarded-for'] = options.ip;
    if (options.token) headers['authorization'] = `Bearer ${options.token}`;
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON
    }
    return { status: res.status, json };
  }
}
