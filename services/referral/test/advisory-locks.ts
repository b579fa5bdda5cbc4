import type { Teardownable } from '@refstack/shared/testing';
import pg from 'pg';

/**
 * Another session holding these inviters' advisory locks, as a slow activation on another instance
 * would: the same key the service takes (namespace 7270, the id's low 31 bits), from a connection
 * of its own that is not the service's (application_name).
 */
export async function holdInviterLocks(
  t: Teardownable,
  url: string,
  inviterIds: readonly string[],
): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url, application_name: 'test-lock-holder' });
  await client.connect();
  let open = true;
  const release = async () => {
    if (!open) return;
    open = false;
    await client.end();
  };
  t.teardown(release);
  for (const id of inviterIds)
    await client.query('SELECT pg_advisory_lock(7270, ($1::bigint % 2147483647)::int)', [id]);
  return { release };
}

/**
 * Advisory locks in this database that the service's connections hold (granted) or wait for, seen
 * from a connection of the test's own: the service's pool may be the very thing that is full.
 */
export async function lockObserver(
  t: Teardownable,
  url: string,
): Promise<() => Promise<Array<{ pid: number; granted: boolean }>>> {
  const client = new pg.Client({ connectionString: url, application_name: 'test-lock-observer' });
  await client.connect();
  t.teardown(() => client.end());
  return async () =>
    (
      await client.query<{ pid: number; granted: boolean }>(`
    SELECT l.pid, l.granted FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND a.application_name = 'referral'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
    ).rows;
}
