// `pnpm start`: builds what changed, checks the stores, then runs the four processes together with
// each output line prefixed by its process name. SIGINT/SIGTERM stop all of them within 10 s.
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Transform } from 'node:stream';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line) => process.stdout.write(`[start] ${line}\n`);

const build = spawnSync('pnpm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  log('the build failed; nothing was started');
  process.exit(build.status ?? 1);
}
// Only now: both need @refstack/shared as built.
const { ConfigError, PROCESSES, builtEntry, loadConfig } = await import('@refstack/shared/contracts');
const { checkStores } = await import('./stores.mjs');

// Read as the processes will read it (trimmed, defaults applied), so what is checked and shown here
// is what they use; a setting they would refuse stops everything before anything starts.
let config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`[start] ${error.message}\n`);
  process.exit(1);
}
const failures = await checkStores({
  databaseUrl: config.databaseUrl,
  redisUrl: config.redisUrl,
  redisClusterNodes: config.redisClusterNodes,
  startLocal: false,
});
if (failures.length > 0) {
  for (const failure of failures) process.stderr.write(`[start] ${failure}\n`);
  process.exit(1);
}

/** How to reach, from this machine, a port bound to `host`. */
function origin(host, port) {
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}
log(
  `gateway on ${origin(config.host, config.ports.gateway)} (API docs at /docs); ` +
    'SMS codes appear in the [sms-worker] lines below',
);
log(
  `gateway metrics and the detailed readiness report on ${origin(config.opsHost, config.gateway.metricsPort)} ` +
    '(/metrics, /health/ready), not for clients',
);
if (config.sms.metricsPort > 0) log(`SMS worker metrics on ${origin(config.opsHost, config.sms.metricsPort)}/metrics`);

const processes = PROCESSES.map((spec) => ({ name: spec.name, args: [builtEntry(spec)] }));
const width = Math.max(...processes.map((p) => p.name.length));

// Each service runs in a process group of its own so that a terminal's Ctrl-C reaches it exactly
// once (forwarded from here) instead of twice; a second signal would cut its graceful close short.
const children = processes.map(({ name, args }) => {
  const child = spawn(process.execPath, args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: process.env,
  });
  const prefix = `[${name}]`.padEnd(width + 3);
  child.stdout.pipe(prefixLines(prefix)).pipe(process.stdout, { end: false });
  child.stderr.pipe(prefixLines(prefix)).pipe(process.stdout, { end: false });
  return {
    name,
    child,
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ name, code, signal }))),
  };
});

/**
 * Prefixes every line with the process name. Works on whole chunks (one write per chunk, not per
 * line) because under load the services log thousands of lines a second; a partial last line waits
 * for its end, so lines of different processes never mix.
 */
function prefixLines(prefix) {
  const head = Buffer.from(prefix);
  let rest = Buffer.alloc(0);
  return new Transform({
    transform(chunk, _encoding, done) {
      const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      const parts = [];
      let from = 0;
      for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, from)) {
        parts.push(head, data.subarray(from, nl + 1));
        from = nl + 1;
      }
      rest = Buffer.from(data.subarray(from));
      done(null, parts.length > 0 ? Buffer.concat(parts) : undefined);
    },
    flush(done) {
      done(null, rest.length > 0 ? Buffer.concat([head, rest, Buffer.from('\n')]) : undefined);
    },
  });
}

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
