import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../contracts/config.js';
import { drainAndClose } from './drain.js';
import { redactUrlCredentials, safeUrl } from '../contracts/credentials.js';

/** Graceful shutdown must finish within this; the contract allows 10 s. */
export const SHUTDOWN_TIMEOUT_MS = 9000;

/** A backing store that cannot be reached at start-up; printed as advice, not as a stack trace. */
export class StoreUnreachableError extends Error {
  readonly store: 'Postgres' | 'Redis';
  readonly url: string;
  constructor(store: 'Postgres' | 'Redis', url: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message || (cause as NodeJS.ErrnoException).code || cause.name : String(cause);
    super(`cannot reach ${store} at ${safeUrl(url)}: ${reason}`);
    this.name = 'StoreUnreachableError';
    this.store = store;
    this.url = url;
  }
}

/** What to do when a store is not there: said by the processes and by `pnpm start` and `pnpm test`. */
export const STORE_START_HINTS: Record<StoreUnreachableError['store'], string> = {
  Postgres:
    'Start one with `docker compose up -d postgres`, or the local service ' +
    '(`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`), or point DATABASE_URL at a running server.',
  Redis:
    'Start one with `docker compose up -d redis`, or a local one ' +
    '(`redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no`), or point REDIS_URL at a running server.',
};

/**
 * Explains a start-up failure in a sentence or two and exits non-zero. Whatever is printed, a
 * library's message included, has the passwords of the URLs in it masked.
 */
export function exitOnStartupError(name: string, error: unknown): never {
  let text: string;
  if (error instanceof ConfigError) {
    text = `[${name}] ${error.message}\n`;
  } else if (error instanceof StoreUnreachableError) {
    text = `[${name}] ${error.message}\n[${name}] ${STORE_START_HINTS[error.store]}\n`;
  } else {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    text = `[${name}] failed to start: ${message}\n`;
  }
  process.stderr.write(redactUrlCredentials(text));
  process.exit(1);
}

/**
 * Runs a closeable unit (an HTTP app or a worker) until SIGTERM/SIGINT, then closes it within the
 * shutdown budget and exits 0. A second signal or a timeout exits 1.
 */
export function closeOnSignals(name: string, close: () => Promise<void>, log: { info: (msg: string) => void; error: (obj: unknown, msg?: string) => void }): void {
  closeWithGrace({ delay: SHUTDOWN_TIMEOUT_MS, logger: { error: (m: unknown) => log.error(m) } }, async ({ signal, err }) => {
    if (err) log.error({ err }, `${name} crashed; closing`);
    else log.info(`${name} received ${signal ?? 'exit'}; closing`);
    await close();
  });
}

export async function listen(app: FastifyInstance, name: string, host: string, port: number): Promise<void> {
  closeOnSignals(name, () => drainAndClose(app), app.log);
  await app.listen({ host, port });
}
