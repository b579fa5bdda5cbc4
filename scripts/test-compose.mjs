// `pnpm test:compose`: brings the project's docker-compose.yml up for real and tests it like an
// operator would (e2e/compose/compose.test.ts). This script only picks the container engine:
//   1. a Docker engine, when one answers (`docker info`);
//   2. otherwise podman with stand-in images, prepared by `compose-standins/prepare.sh` when that
//      folder is found (COMPOSE_STANDINS_DIR, or `shared/compose-standins` beside the checkout or
//      beside one of its parent folders);
//   3. otherwise podman with podman-compose, when both are installed already.
// With none of them it says so and exits 1, or 0 when COMPOSE_TEST_OPTIONAL=1.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const log = (line) => process.stdout.write(`[test:compose] ${line}\n`);
const answers = (command, args) => spawnSync(command, args, { stdio: 'ignore', timeout: 15_000 }).status === 0;

function standinsDir() {
  if (process.env.COMPOSE_STANDINS_DIR) return process.env.COMPOSE_STANDINS_DIR;
  for (let dir = dirname(root); ; dir = dirname(dir)) {
    const candidate = join(dir, 'shared', 'compose-standins');
    if (existsSync(join(candidate, 'prepare.sh'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

function pickEngine() {
  if (answers('docker', ['info']) && answers('docker', ['compose', 'version'])) return { engine: 'docker' };
  const standins = standinsDir();
  if (standins) {
    log(`no Docker engine answers; preparing podman with the stand-in images in ${standins}`);
    const asRoot = process.getuid?.() === 0;
    const prepare = spawnSync(asRoot ? 'bash' : 'sudo', asRoot ? [join(standins, 'prepare.sh')] : ['bash', join(standins, 'prepare.sh')], { stdio: 'inherit' });
    if (prepare.status !== 0) {
      log('preparing podman failed (see above)');
      process.exit(1);
    }
    return { engine: 'podman', standins };
  }
  if (answers('podman', ['info']) && answers('podman-compose', ['version'])) return { engine: 'podman' };
  return undefined;
}

const picked = pickEngine();
if (!picked) {
  const optional = process.env.COMPOSE_TEST_OPTIONAL === '1';
  log(
    'no container engine is available: no Docker engine answers `docker info`, no compose-standins folder ' +
      'was found (set COMPOSE_STANDINS_DIR) and podman with podman-compose is not installed. ' +
      (optional ? 'COMPOSE_TEST_OPTIONAL=1, so this is not a failure; nothing was tested.' : 'Set COMPOSE_TEST_OPTIONAL=1 to make this not a failure.'),
  );
  process.exit(optional ? 0 : 1);
}
log(`engine: ${picked.engine}`);
if (picked.engine === 'podman' && existsSync(join(root, '.env'))) {
  // podman-compose 1.0 lets .env override the environment, so the test's own secrets and port
  // would silently lose to the operator's.
  log('podman-compose would read ./.env over the test settings: move .env aside (or run from a clean checkout) and retry');
  process.exit(1);
}

const env = { ...process.env, COMPOSE_ENGINE: picked.engine, ...(picked.standins ? { COMPOSE_STANDINS_DIR: picked.standins } : {}) };
const tap = spawnSync('pnpm', ['--filter', '@refstack/e2e', 'run', 'test:compose'], { cwd: root, env, stdio: 'inherit' });
process.exit(tap.status ?? 1);
