import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { eventually } from '@refstack/shared/testing';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVICES = ['postgres', 'redis', 'auth', 'sms-worker', 'referral', 'gateway'] as const;
export const BUILT = ['auth', 'sms-worker', 'referral', 'gateway'] as const;
/** The second instances docker-compose.scale.yml adds. */
export const SECOND_INSTANCES = ['auth-2', 'sms-worker-2', 'referral-2'] as const;
export type Service = (typeof SERVICES)[number] | (typeof SECOND_INSTANCES)[number];
export type Engine = 'docker' | 'podman';

type Condition = 'service_started' | 'service_healthy' | 'service_completed_successfully';
interface ComposeService {
  depends_on?: string[] | Record<string, { condition?: Condition } | null>;
}

function dependsOn(service: ComposeService | undefined): Record<string, Condition> {
  const declared = service?.depends_on ?? [];
  if (Array.isArray(declared)) return Object.fromEntries(declared.map((name) => [name, 'service_started' as const]));
  return Object.fromEntries(Object.entries(declared).map(([name, d]) => [name, d?.condition ?? 'service_started']));
}

function dependsOnDeclared(service: ComposeService | undefined): Record<string, { condition: Condition }> {
  return Object.fromEntries(Object.entries(dependsOn(service)).map(([name, condition]) => [name, { condition }]));
}

/** Every service after the ones it depends on. */
export function startOrder(services: Record<string, ComposeService>): string[] {
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`depends_on has a cycle through ${name}`);
    visiting.add(name);
    for (const dependency of Object.keys(dependsOn(services[name]))) visit(dependency);
    order.push(name);
  };
  for (const name of Object.keys(services)) visit(name);
  return order;
}

/**
 * The project's own docker-compose.yml under a project name of its own, driven through a Docker
 * engine or podman. Every command fails loudly with the engine's output.
 */
export class ComposeStack {
  readonly url: string;

  constructor(
    readonly engine: Engine,
    readonly project: string,
    private readonly env: Record<string, string>,
    /** The compose files, as `-f` takes them in order (an override after the base). */
    readonly files: readonly string[] = ['docker-compose.yml'],
  ) {
    this.url = `http://127.0.0.1:${env['GATEWAY_PORT']}`;
  }

  private get fileArgs(): string[] {
    return this.files.flatMap((file) => ['-f', file]);
  }

  private run(command: string, args: string[], timeoutMs = 600_000): SpawnSyncReturns<string> {
    return spawnSync(command, args, {
      cwd: ROOT,
      env: this.env,
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
  }

  private must(command: string, args: string[], timeoutMs?: number): string {
    const result = this.run(command, args, timeoutMs);
    if (result.status !== 0) {
      throw new Error(
        `${command} ${args.join(' ')} failed (${result.status ?? result.signal}):\n` +
          `${(result.stdout ?? '').slice(-3000)}\n${(result.stderr ?? '').slice(-3000)}`,
      );
    }
    return result.stdout;
  }

  private compose(args: string[], timeoutMs?: number): string {
    return this.engine === 'docker'
      ? this.must('docker', ['compose', ...this.fileArgs, '-p', this.project, ...args], timeoutMs)
      : this.must('podman-compose', [...this.fileArgs, '-p', this.project, ...args], timeoutMs);
  }

  build(): void {
    this.compose(['build']);
  }

  /** Starts every service in dependency order and waits until the gateway is ready. */
  async up(): Promise<void> {
    if (this.engine === 'docker') this.compose(['up', '-d', '--wait', '--wait-timeout', '180']);
    else await this.upInOrder(180_000);
    await this.until(120_000, 'the gateway ready', async () => {
      const ready = await fetch(`${this.url}/health/ready`, { signal: AbortSignal.timeout(3000) }).catch(
        () => undefined,
      );
      return ready?.status === 200 && this.healthy('gateway');
    });
  }

  /**
   * What `docker compose up --wait` does, for podman-compose 1.0: it ignores `depends_on` conditions,
   * and podman runs no healthchecks by itself without systemd. So each service starts once what it
   * depends on meets its condition, checked by running the healthcheck here.
   */
  private async upInOrder(timeoutMs: number): Promise<void> {
    for (const service of startOrder(this.services())) {
      for (const [dependency, condition] of Object.entries(dependsOn(this.services()[service]))) {
        if (condition === 'service_started') continue;
        await this.until(timeoutMs, `${dependency} reaching ${condition}`, () =>
          condition === 'service_healthy' ? this.healthy(dependency as Service) : this.completed(dependency as Service),
        );
      }
      this.compose(['up', '-d', '--no-deps', service]);
    }
  }

  /** The services of every file, with the dependencies an override adds merged in. */
  private services(): Record<string, ComposeService> {
    const merged: Record<string, ComposeService> = {};
    for (const file of this.files) {
      const { services } = parse(readFileSync(join(ROOT, file), 'utf8')) as {
        services: Record<string, ComposeService>;
      };
      for (const [name, service] of Object.entries(services)) {
        merged[name] = {
          depends_on: { ...dependsOnDeclared(merged[name]), ...dependsOnDeclared(service) },
        };
      }
    }
    return merged;
  }

  private completed(service: Service): boolean {
    const state = this.run(this.engine, [
      'inspect',
      '--format',
      '{{.State.Status}} {{.State.ExitCode}}',
      this.container(service),
    ]);
    return state.stdout.trim() === 'exited 0';
  }

  /** `eventually`, with the gateway's last output in the failure. */
  private async until(timeoutMs: number, what: string, ready: () => boolean | Promise<boolean>): Promise<void> {
    await eventually(what, ready, timeoutMs, 500).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.logs('gateway').slice(-3000)}`);
    });
  }

  /** The service's own healthcheck, as compose declares it. */
  healthy(service: Service): boolean {
    if (this.engine === 'podman')
      return this.run('podman', ['healthcheck', 'run', this.container(service)]).status === 0;
    const status = this.run('docker', [
      'inspect',
      '--format',
      '{{.State.Health.Status}}',
      this.container(service),
    ]).stdout.trim();
    return status === 'healthy';
  }

  /**
   * Healthy as compose judges it: one failed run of the check is not enough, since compose marks a
   * container unhealthy only after `retries` (5) failures in a row. A single run on a loaded machine
   * can miss its 3 s timeout while the service is fine, so the check gets the same few tries.
   */
  async passesHealthcheck(service: Service, tries = 5): Promise<boolean> {
    for (let attempt = 1; attempt <= tries; attempt += 1) {
      if (this.healthy(service)) return true;
      if (attempt < tries) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return false;
  }

  stop(services: readonly Service[] = []): void {
    this.compose(['stop', '-t', '10', ...services]);
  }

  /** `down` without `-v`: containers and network go, volumes stay. */
  down(): void {
    this.compose(['down', '-t', '10']);
    this.removeNetwork();
  }

  container(service: Service): string {
    if (this.engine === 'podman') return `${this.project}_${service}_1`;
    return (
      this.must('docker', [
        'ps',
        '-aq',
        '--filter',
        `label=com.docker.compose.project=${this.project}`,
        '--filter',
        `label=com.docker.compose.service=${service}`,
      ])
        .trim()
        .split('\n')[0] ?? ''
    );
  }

  logs(service: Service): string {
    const result = this.run(this.engine, ['logs', this.container(service)]);
    return `${result.stdout}${result.stderr}`;
  }

  /** The exit code of a stopped service's container. */
  exitCode(service: Service): number {
    return Number(
      this.must(this.engine, ['inspect', '--format', '{{.State.ExitCode}}', this.container(service)]).trim(),
    );
  }

  /** Each container of the project with the host ports it publishes. */
  publishedPorts(): Record<string, string> {
    const out = this.must(this.engine, [
      'ps',
      '-a',
      '--filter',
      `label=com.docker.compose.project=${this.project}`,
      '--format',
      '{{.Names}}\t{{.Ports}}',
    ]);
    return Object.fromEntries(
      out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [name = '', ports = ''] = line.split('\t');
          return [name, ports.trim()];
        }),
    );
  }

  /**
   * A command run inside a service's running container, as `docker compose exec <service> ...`
   * runs it (by the container's name, which both engines take); its standard output.
   */
  exec(service: Service, command: readonly string[]): string {
    return this.must(this.engine, ['exec', this.container(service), ...command], 60_000);
  }

  /** Bytes per built image. */
  imageSizes(): Record<string, number> {
    return Object.fromEntries(
      BUILT.map((service) => [
        service,
        Number(
          this.must(this.engine, ['image', 'inspect', '--format', '{{.Size}}', `refstack/${service}:latest`]).trim(),
        ),
      ]),
    );
  }

  /** Bytes of the Node base image the Dockerfile builds on (shared by all four). */
  baseImageSize(): number {
    return Number(this.must(this.engine, ['image', 'inspect', '--format', '{{.Size}}', 'node:22-slim']).trim());
  }

  /** The packages installed in an image (pnpm's store folder names, `name@version`). */
  installedPackages(service: (typeof BUILT)[number]): string[] {
    return this.must(this.engine, [
      'run',
      '--rm',
      '--entrypoint',
      'ls',
      `refstack/${service}:latest`,
      'node_modules/.pnpm',
    ])
      .trim()
      .split('\n');
  }

  /** The user an image runs as. */
  imageUser(service: (typeof BUILT)[number]): string {
    return this.must(this.engine, [
      'image',
      'inspect',
      '--format',
      '{{.Config.User}}',
      `refstack/${service}:latest`,
    ]).trim();
  }

  private removeNetwork(): void {
    // podman-compose 1.0 leaves the default network behind on `down`.
    if (this.engine === 'podman') this.run('podman', ['network', 'rm', '-f', `${this.project}_default`]);
  }

  /** What the project still owns on the engine: containers, networks, volumes. */
  leftovers(): { containers: string[]; networks: string[]; volumes: string[] } {
    const list = (args: string[]) => this.run(this.engine, args).stdout.trim().split('\n').filter(Boolean);
    const label = `label=com.docker.compose.project=${this.project}`;
    return {
      containers: list(['ps', '-aq', '--filter', label]),
      networks: list(['network', 'ls', '--format', '{{.Name}}']).filter((name) => name.startsWith(`${this.project}_`)),
      volumes: list(['volume', 'ls', '--format', '{{.Name}}']).filter((name) => name.startsWith(`${this.project}_`)),
    };
  }

  /** Removes everything of the project, whatever state a failed step left it in. Never throws. */
  teardown(): void {
    if (this.engine === 'docker')
      this.run('docker', [
        'compose',
        ...this.fileArgs,
        '-p',
        this.project,
        'down',
        '-v',
        '-t',
        '5',
        '--remove-orphans',
      ]);
    else this.run('podman-compose', [...this.fileArgs, '-p', this.project, 'down', '-v', '-t', '5']);
    const { containers, networks, volumes } = this.leftovers();
    if (containers.length > 0) this.run(this.engine, ['rm', '-f', '-v', ...containers]);
    for (const network of networks) this.run(this.engine, ['network', 'rm', '-f', network]);
    if (volumes.length > 0) this.run(this.engine, ['volume', 'rm', '-f', ...volumes]);
  }
}
