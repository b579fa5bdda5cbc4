// Reachability of the backing stores, shared by `pnpm start` and `pnpm test`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/referral';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** The URL with its password masked; also when it does not parse (as `safeUrl` in packages/shared). */
export function safeUrl(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    // The password is everything between the user's `:` and the last `@`.
    const start = url.indexOf('://');
    const at = url.lastIndexOf('@');
    const colon = start < 0 || at < start ? -1 : url.slice(start + 3, at).indexOf(':');
    return colon < 0 ? url : `${url.slice(0, start + 3 + colon + 1)}***${url.slice(at)}`;
  }
}

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

export const HINTS = {
  postgres:
    'Start one with `docker compose up -d postgres redis`, or the local service:\n' +
    '    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n' +
    '  or set DATABASE_URL to a running server.',
  redis:
    'Start one with `docker compose up -d postgres redis`, or a local one:\n' +
    '    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no\n' +
    '  or set REDIS_URL to a running server.',
};

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
      execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', port, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
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
 * of failures as printable sentences (empty when both answer).
 */
export async function checkStores({ databaseUrl, redisUrl, startLocal }) {
  const failures = [];
  for (const [kind, url, port] of [
    ['postgres', databaseUrl, 5432],
    ['redis', redisUrl, 6379],
  ]) {
    if (await reachable(url, port)) continue;
    if (startLocal && tryStartLocal(kind, url) && (await waitReachable(url, port))) {
      process.stderr.write(`started the local ${kind} at ${safeUrl(url)}\n`);
      continue;
    }
    const name = kind === 'postgres' ? 'PostgreSQL' : 'Redis';
    failures.push(`Cannot reach ${name} at ${safeUrl(url)}.\n  ${HINTS[kind]}`);
  }
  return failures;
}
