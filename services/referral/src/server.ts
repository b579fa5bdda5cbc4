import { exitOnStartupError, listen, loadConfig } from '@refstack/shared';
import { buildApp } from './app.js';
import { prepareDatabase } from './db/prepare.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env, { requiredSecrets: ['INTERNAL_TOKEN'] });
  await prepareDatabase(config.databaseUrl, { createIfMissing: !config.isProduction });
  const app = await buildApp(config);
  await listen(app, 'referral', config.host, config.ports.referral);
}

main().catch((error: unknown) => exitOnStartupError('referral', error));
