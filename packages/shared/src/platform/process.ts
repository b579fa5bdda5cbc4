import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../contracts/config.js';
import { drainAndClose } from './drain.js';
import { redactUrlCredentials, safeUrl } from '../contracts/credentials.js';
import { STORE_START_HINTS, type StoreName } from '../contracts/store-hints.js';

/** Graceful shutdown must finish within this; the contract allows 10 s. */
export const SHUTDOWN_TIMEOUT_MS = 9000;

/** A backing store that cannot be reached at start-up; printed as advice, not as a stack trace. */
export class StoreUnreachableError extends Error {
  readonly store: StoreName;
  readonly url: string;
  constructor(store: StoreName, url: string, cause: unknown) {
    const reason =
      cause instanceof Error ? cause.message || (cause as NodeJS.ErrnoException).code || cause.name : String(cause);
    super(`cannot reach ${store} at ${safeUrl(url)}: ${reason}`);
    this.name = 'StoreUnreachableError';
    this.store = store;
    this.url = url;
  }
}

export { STORE_START_HINTS } from '../contracts/store-hints.js';

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
export function closeOnSignals(
  name: string,
  close: () => Promise<void>,
  log: { info: (msg: string) => void; error: (obj: unknown, msg?: string) => void },
): void {
  closeWithGrace(
    { delay: SHUTDOWN_TIMEOUT_MS, logger: { error: (m: unknown) => log.error(m) } },
    async ({ signal, err }) => {
      if (err) log.error({ err }, `${name} crashed; closing`);
      else log.info(`${name} received ${signal ?? 'exit'}; closing`);
      await close();
    },
  );
}

export async function listen(app: FastifyInstance, name: string, host: string, port: number): Promise<void> {
  closeOnSignals(name, () => drainAndClose(app), app.log);
  await app.listen({ host, port });
}
