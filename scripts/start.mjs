// `pnpm start`: builds what changed, checks the stores, then runs the four processes together with
// each output line prefixed by its process name. SIGINT/SIGTERM stop all of them within 10 s.
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { checkStores, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from './stores.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line) => process.stdout.write(`[start] ${line}\n`);

const build = spawnSync('pnpm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  log('the build failed; nothing was started');
  process.exit(build.status ?? 1);
}

const failures = await checkStores({
  databaseUrl: process.env.DATABASE_URL || DEFAULT_DATABASE_URL,
  redisUrl: process.env.REDIS_URL || DEFAULT_REDIS_URL,
  startLocal: false,
});
if (failures.length > 0) {
  for (const failure of failures) process.stderr.write(`[start] ${failure}\n`);
  process.exit(1);
}

const host = process.env.HOST || '127.0.0.1';
const gatewayPort = process.env.GATEWAY_PORT || '8080';
const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
log(`gateway on http://${shownHost}:${gatewayPort} (API docs at /docs); SMS codes appear in the [sms-worker] lines below`);

const processes = [
  { name: 'referral', args: ['services/referral/dist/server.js'] },
  { name: 'auth', args: ['services/auth/dist/server.js'] },
  { name: 'sms-worker', args: ['services/auth/dist/sms-worker.js'] },
  { name: 'gateway', args: ['services/gateway/dist/server.js'] },
];
const width = Math.max(...processes.map((p) => p.name.length));

// Each service runs in a process group of its own so that a terminal's Ctrl-C reaches it exactly
// once (forwarded from here) instead of twice; a second signal would cut its graceful close short.
const children = processes.map(({ name, args }) => {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: process.env });
  const prefix = `[${name}]`.padEnd(width + 3);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => process.stdout.write(`${prefix}${line}\n`));
  }
  return { name, child, exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ name, code, signal }))) };
});

let stopping = false;
function stopAll(signal) {
  if (stopping) return;
  stopping = true;
  for (const { child } of children) if (child.exitCode === null) child.kill(signal);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => stopAll('SIGTERM'));

// One process dying on its own takes the others down: a half-running system helps nobody.
const first = await Promise.race(children.map((c) => c.exit));
const crashed = !stopping;
if (crashed) {
  log(`${first.name} exited (${first.signal ?? `code ${first.code}`}); stopping the others`);
  stopAll('SIGTERM');
}
const results = await Promise.all(children.map((c) => c.exit));
const failed = results.filter((r) => r.code !== 0);
for (const r of failed) log(`${r.name} exited with ${r.signal ?? `code ${r.code}`}`);
process.exit(!crashed && failed.length === 0 ? 0 : 1);
