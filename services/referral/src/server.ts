import { loadConfig, processSpec } from '@refstack/shared/contracts';
import { exitOnStartupError, listen } from '@refstack/shared/platform';
import { buildApp } from './app.js';
import { JwksClient } from './tokens/jwks-client.js';
import { prepareDatabase } from './db/prepare.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env, { requiredSecrets: processSpec('referral').secrets });
  await prepareDatabase(config.databaseUrl, {
    createIfMissing: !config.isProduction,
    onWait: (message) => process.stderr.write(`referral: ${message}\n`),
  });
  const jwks = new JwksClient({ url: config.urls.jwks, alternates: config.urls.jwksAlternates, timeoutMs: 2000 });
  const app = await buildApp(config, { jwks });
  // Warm the key cache; if auth is not up yet, the first request with a token fetches the keys.
  jwks.refresh().catch((error: unknown) => app.log.warn({ reason: (error as Error).message }, 'JWKS not fetched yet'));
  await listen(app, 'referral', config.host, config.ports.referral);
}

main().catch((error: unknown) => exitOnStartupError('referral', error));
