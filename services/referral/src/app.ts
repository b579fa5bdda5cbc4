import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { createServiceApp, type Config, type DestinationStream } from '@refstack/shared';

import { createDatabase, pingDatabase } from './db/database.js';
import type { Database } from './db/schema.js';

export interface ReferralAppOptions {
  logStream?: DestinationStream;
  /** An existing handle (tests share one); otherwise the app opens and closes its own pool. */
  db?: Kysely<Database>;
}

export async function buildApp(config: Config, options: ReferralAppOptions = {}): Promise<FastifyInstance> {
  const db = options.db ?? createDatabase({ url: config.databaseUrl, poolSize: config.databasePoolSize });
  const app = createServiceApp({
    service: 'referral',
    config,
    logStream: options.logStream,
    readiness: { postgres: () => pingDatabase(db) },
  });
  if (!options.db) app.addHook('onClose', () => db.destroy());
  return app;
}
