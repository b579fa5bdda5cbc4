import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { TEST_POSTGRES_URL } from './test-config.js';

export interface Teardownable {
  teardown(fn: () => unknown): void;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A database of its own for one test file, dropped (with any connections left) at teardown.
 * The name carries the pid so that a crashed run's leftovers are recognisable.
 */
export async function createTestDatabase(t: Teardownable): Promise<string> {
  const name = `test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE "${name}"`));
  t.teardown(() => admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)));
  return withDatabase(TEST_POSTGRES_URL, name);
}

/** A URL of a database that does not exist on a port nothing listens on. */
export const UNREACHABLE_POSTGRES_URL = 'postgres://postgres@127.0.0.1:1/nowhere';
