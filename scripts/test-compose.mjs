// `pnpm test:compose`: brings the project's docker-compose.yml up for real and tests it like an
// operator would (e2e/compose/compose.test.ts). This script only picks the container engine:
//   1. a Docker engine, when one answers (`docker info`) and has the compose plugin;
//   2. otherwise podman with podman-compose, when both answer. The test starts the services in
//      dependency order itself, as podman-compose does not wait on healthchecks.
// It installs nothing. With neither engine it says so and exits 1, or 0 when COMPOSE_TEST_OPTIONAL=1.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line) => process.stdout.write(`[test:compose] ${line}\n`);
const answers = (command, args) => spawnSync(command, args, { stdio: 'ignore', timeout: 15_000 }).status === 0;

function pickEngine() {
  if (answers('docker', ['info']) && answers('docker', ['compose', 'version'])) return 'docker';
  if (answers('podman', ['info']) && answers('podman-compose', ['version'])) return 'podman';
  return undefined;
}

const engine = pickEngine();
if (!engine) {
  const optional = process.env.COMPOSE_TEST_OPTIONAL === '1';
  log(
    'no container engine is available: no Docker engine answers `docker info` (with `docker compose`), ' +
      'and podman with podman-compose is not installed. ' +
      (optional
        ? 'COMPOSE_TEST_OPTIONAL=1, so this is not a failure; nothing was tested.'
        : 'Set COMPOSE_TEST_OPTIONAL=1 to make this not a failure.'),
  );
  process.exit(optional ? 0 : 1);
}
log(`engine: ${engine}`);
if (engine === 'podman' && existsSync(join(root, '.env'))) {
  // podman-compose 1.0 lets .env override the environment, so the test's own secrets and port
  // would silently lose to the operator's.
  log(
    'podman-compose would read ./.env over the test settings: move .env aside (or run from a clean checkout) and retry',
  );
  process.exit(1);
}

const env = { ...process.env, COMPOSE_ENGINE: engine };
const tap = spawnSync('pnpm', ['--filter', '@refstack/e2e', 'run', 'test:compose'], {
  cwd: root,
  env,
  stdio: 'inherit',
});
process.exit(tap.status ?? 1);
