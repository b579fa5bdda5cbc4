import { loadConfig } from '@refstack/shared/contracts';
import { exitOnStartupError } from '@refstack/shared/platform';
import { prepareDatabase } from '../db/prepare.js';

/** `pnpm db:migrate`: applies pending migrations and prints each one's outcome. */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const { created, results } = await prepareDatabase(config.databaseUrl, {
    createIfMissing: !config.isProduction,
    onWait: (message) => process.stderr.write(`${message}\n`),
  });
  if (created) process.stdout.write('created the database\n');
  for (const result of results) process.stdout.write(`${result.status.toLowerCase()}: ${result.migrationName}\n`);
  if (results.length === 0) process.stdout.write('the database is up to date\n');
}

main().catch((error: unknown) => exitOnStartupError('db:migrate', error));
