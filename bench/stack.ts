/**
 * The system under test: its four processes started by the test kit's ProcessGroup, as the fault
 * suites start them, but in production mode, with secrets made for this run, a database and a Redis
 * key prefix of its own, and their output going straight to a file. The rest of the bench sees only
 * `startStack` and `startBareServer`, so how
 * the processes are started can change without touching the scenarios.
 */
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { builtEntry, PROCESSES, type ProcessName, type SecretName } from '@refstack/shared/contracts';
import { buildWorkspace, freePort, ProcessGroup, TestTokenIssuer } from '@refstack/shared/testing';

export interface StackOptions {
  /** The repository root: where the build runs and the entry points are. */
  root: string;
  /** A database the bench may create and drop databases from. */
  adminDatabaseUrl: string;
  redisUrl: string;
  logLevel: string;
}

export interface StackProcess {
  name: ProcessName;
  /** Its entry point relative to the repository root, as `builtEntry` gives it. */
  entry: string;
  pid: number;
}

export interface Stack {
  gateway: string;
  referral: string;
  databaseUrl: string;
  /** Everything the system printed, standard output and error, SMS lines included. */
  logFile: string;
  pids: readonly StackProcess[];
  /** An access token, signed with this run's auth key, that referral accepts as auth's own. */
  accessToken(user: { id: string; phone: string }): string;
  stop(): Promise<void>;
}

export interface BareServer {
  url: string;
  stop(): Promise<void>;
}

// Not one of PROCESSES: a one-off command, run before the services start.
const MIGRATE_ENTRY = 'services/referral/dist/cli/migrate.js';
const BARE_SERVER = 'bench/bare-server.mjs';
const TOKEN_TTL_SECONDS = 3600;

/** Builds, migrates a fresh database, starts the system and waits until the gateway is ready. */
export async function startStack(options: StackOptions): Promise<Stack> {
  buildWorkspace();

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dbName = `bench_${stamp.replace(/-/g, '_').toLowerCase()}`;
  const databaseUrl = new URL(options.adminDatabaseUrl);
  databaseUrl.pathname = `/${dbName}`;
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  const logFile = join(os.tmpdir(), `refstack-bench-${stamp}.log`);

  const admin = new pg.Client({ connectionString: options.adminDatabaseUrl });
  await admin.connect();
  let group: ProcessGroup | undefined;
  let output: number | undefined;
  const stop = async () => {
    await group?.stopAll();
    if (output !== undefined) closeSync(output);
    rmSync(logFile, { force: true });
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end();
    await deleteKeys(options.redisUrl, prefix);
  };

  try {
    await admin.query(`CREATE DATABASE "${dbName}"`);
    const ports: Record<string, number> = {
      GATEWAY_METRICS_PORT: await freePort(),
      SMS_WORKER_METRICS_PORT: await freePort(),
    };
    for (const spec of PROCESSES) if (spec.portVar) ports[spec.portVar] = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'production',
      // Logging stays on for the measurement; BENCH_LOG_LEVEL=warn shows what it costs.
      LOG_LEVEL: options.logLevel,
      ...runSecrets(privatePem),
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL: options.redisUrl,
      REDIS_KEY_PREFIX: prefix,
      ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])),
      // Raised for the run: the load comes from one address and cycles over few phones.
      OTP_RESEND_SECONDS: '0',
      OTP_MAX_SENDS_PER_HOUR: '1000000',
      OTP_MAX_FAILED_PER_DAY: '1000000',
      OTP_PHONE_FAILED_PER_DAY: '1000000',
      // Production refuses shorter codes.
      OTP_LENGTH: '6',
      SEND_CODE_IP_PER_HOUR: '100000000',
      VERIFY_IP_FAILED_PER_HOUR: '100000000',
      SMS_PREFIX_PER_HOUR: '1000000',
      SMS_MIN_CONVERSION: '0',
    };

    // Production refuses to create databases: migrate first, as an operator would.
    runOrThrow(process.execPath, [MIGRATE_ENTRY], options.root, env, 'migration failed');

    // The output goes to a file, as it would to a log collector: the load generator must not spend
    // its CPU reading a line per request.
    output = openSync(logFile, 'w');
    // BENCH_CPU_PROFILE=<dir>: each process writes a V8 CPU profile there when it stops.
    const profileDir = process.env['BENCH_CPU_PROFILE'];
    const nodeFlags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    group = new ProcessGroup({ env, stdout: output, stderr: 'inherit', cwd: options.root, nodeFlags });
    group.startAll();
    const gateway = `http://127.0.0.1:${ports['GATEWAY_PORT']}`;
    await waitUntilOk(`${gateway}/health/ready`);

    const issuer = new TestTokenIssuer();
    issuer.addKey({ privatePem, kid: await signingKid(gateway) });
    return {
      gateway,
      referral: `http://127.0.0.1:${ports['REFERRAL_PORT']}`,
      databaseUrl: databaseUrl.toString(),
      logFile,
      pids: PROCESSES.map((spec) => ({ name: spec.name, entry: builtEntry(spec), pid: group?.pid(spec.name) ?? 0 })),
      accessToken: (user) => {
        // Longer than auth's own tokens: a soak and the scenarios after it reuse the same ones.
        const exp = Math.floor(Date.now() / 1000) + TOKEN_TTL_SECONDS;
        return issuer.sign({ sub: user.id, phone: user.phone, exp });
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The reference: a bare Fastify "hello" in its own process, in production mode like the services. */
export async function startBareServer(root: string): Promise<BareServer> {
  const port = await freePort();
  const env = { ...process.env, NODE_ENV: 'production', PORT: String(port) };
  const child = spawn(process.execPath, [join(root, BARE_SERVER)], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilOk(`${url}/hello`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

function runOrThrow(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, failure: string): void {
  const result = spawnSync(command, args, { cwd, env, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(failure);
}

/** Every secret some process refuses to start without in production, made for this run. */
function runSecrets(privatePem: string): Partial<Record<SecretName, string>> {
  const names = new Set(PROCESSES.flatMap((spec) => spec.secrets));
  const secrets: Partial<Record<SecretName, string>> = {};
  for (const name of names) secrets[name] = name === 'JWT_PRIVATE_KEY' ? privatePem : randomBytes(32).toString('hex');
  return secrets;
}

async function waitUntilOk(url: string): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (attempt > 200) throw new Error(`${url} never became ready`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The kid auth publishes for the run's key: referral picks the verifying key by it. */
async function signingKid(gateway: string): Promise<string> {
  const jwks = (await (await fetch(`${gateway}/.well-known/jwks.json`)).json()) as { keys?: Array<{ kid?: string }> };
  const kid = jwks.keys?.[0]?.kid;
  if (!kid) throw new Error('the JWKS published no key');
  return kid;
}

async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}
