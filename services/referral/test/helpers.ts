import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { createTestDatabase, LogCapture, testConfig, type Teardownable } from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';
import { createDatabase } from '../src/db/database.js';
import { migrateToLatest } from '../src/db/migrate.js';
import type { Database } from '../src/db/schema.js';

export interface TestContext {
  app: FastifyInstance;
  db: Kysely<Database>;
  databaseUrl: string;
  logs: LogCapture;
}

/** A referral app on a fresh, migrated database of its own; everything is torn down after the test. */
export async function buildTestApp(t: Teardownable, env: Record<string, string> = {}): Promise<TestContext> {
  const databaseUrl = await createTestDatabase(t);
  const db = createDatabase({ url: databaseUrl, poolSize: 5 });
  // Registered first, so it runs after the app's own teardown and before the database is dropped.
  t.teardown(() => db.destroy());
  await migrateToLatest(db);
  const logs = new LogCapture();
  const app = await buildApp(testConfig({ DATABASE_URL: databaseUrl, LOG_LEVEL: 'info', ...env }), { db, logStream: logs });
  t.teardown(() => app.close());
  return { app, db, databaseUrl, logs };
}
