// Reachability of the backing stores, shared by `pnpm start` and `pnpm test`. Both import it once
// @refstack/shared resolves: after the build for `pnpm start`, from source (tsx) for `pnpm test`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { safeUrl, STORE_START_HINTS } from '@refstack/shared/contracts';

/** Resolves true when something accepts TCP connections at the URL's host and port. */
export function reachable(url, defaultPort, timeoutMs = 1500) {
  let host;
  let port;
  try {
    const parsed = new URL(url);
    host = parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    port = Number(parsed.port || defaultPort);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function isLocal(url) {
  try {
    return ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(new URL(url).hostname);
  } catch {
    return false;
  }
}

function has(binary) {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

/** Starts the machine's own Postgres or Redis when the URL is local and the binaries exist. */
export function tryStartLocal(kind, url) {
  if (!isLocal(url)) return false;
  try {
    if (kind === 'postgres' && has('pg_ctlcluster') && existsSync('/etc/postgresql')) {
      const version = readdirSync('/etc/postgresql')[0];
      if (!version) return false;
      execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'ignore' });
      return true;
    }
    if (kind === 'redis' && has('redis-server')) {
      const port = new URL(url).port || '6379';
      execFileSync(
        'redis-server',
        ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', port, '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      );
      return true;
    }
  } catch {
    return false;
  }
  return false;
}

export async function waitReachable(url, defaultPort, totalMs = 15000) {
  const deadline = Date.now() + totalMs;
  while (Date.now() < deadline) {
    if (await reachable(url, defaultPort)) return true;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return false;
}

/**
 * Checks both stores; when `startLocal` is set, starts local ones that are down. Returns the list
 * of failures as printable sentences (empty when both answer). With `redisClusterNodes` (host and
 * port of each seed) Redis is a cluster: one seed that answers is enough, as for the clients.
 */
export async function checkStores({ databaseUrl, redisUrl, redisClusterNodes = [], startLocal }) {
  const failures = [];
  if (redisClusterNodes.length > 0) {
    const seeds = redisClusterNodes.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`);
    const answers = await Promise.all(seeds.map((seed) => reachable(`redis://${seed}`, 6379)));
    if (!answers.includes(true)) {
      failures.push(
        `Cannot reach any Redis Cluster node of REDIS_CLUSTER_NODES (${seeds.join(', ')}).\n` +
          '  Start the cluster, or unset REDIS_CLUSTER_NODES to use REDIS_URL.',
      );
    }
  }
  const stores = [['postgres', databaseUrl, 5432]];
  if (redisClusterNodes.length === 0) stores.push(['redis', redisUrl, 6379]);
  for (const [kind, url, port] of stores) {
    if (await reachable(url, port)) continue;
    if (startLocal && tryStartLocal(kind, url) && (await waitReachable(url, port))) {
      process.stderr.write(`started the local ${kind} at ${safeUrl(url)}\n`);
      continue;
    }
    const name = kind === 'postgres' ? 'PostgreSQL' : 'Redis';
    failures.push(
      `Cannot reach ${name} at ${safeUrl(url)}.\n  ${STORE_START_HINTS[kind === 'postgres' ? 'Postgres' : 'Redis']}`,
    );
  }
  return failures;
}
