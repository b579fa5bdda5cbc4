import DataLoader from 'dataloader';
import { isDependencyUnavailable } from '@refstack/shared/platform';

/**
 * Requests that arrive in the same turn of the event loop, answered by one statement: under load a
 * round trip to PostgreSQL (a write, a wake-up on either side, a protocol exchange) costs more than
 * a small read or insert itself. At idle a batch holds one request and waits for nothing but the
 * current turn. No cache: every request sees the database as it is.
 *
 * When the shared statement fails, each request of a batch of more than one runs alone
 * (`alone`), so that whatever one request did wrong never fails the others asked with it. Not when
 * PostgreSQL is away or out of time: each would fail alone too, only later, so they fail together.
 * A deadlock is the batch's own bad luck, and its requests run alone.
 */
export function sharedStatement<K, V>(
  together: (keys: readonly K[]) => Promise<Array<V | Error>>,
  alone: (key: K) => Promise<V>,
  maxBatchSize: number,
): DataLoader<K, V> {
  return new DataLoader<K, V>(
    async (keys) => {
      try {
        return await together(keys);
      } catch (error) {
        const deadlock = (error as { code?: unknown }).code === '40P01';
        if (keys.length === 1 || (isDependencyUnavailable(error) && !deadlock)) throw error;
        return Promise.all(keys.map((key) => alone(key).catch(toError)));
      }
    },
    { cache: false, maxBatchSize, batchScheduleFn: (dispatch) => setImmediate(dispatch) },
  );
}

/** A DataLoader answers a key with an Error instance to fail that key alone. */
export const toError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));
