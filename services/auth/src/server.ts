import { ConfigError, loadConfig, processSpec } from '@refstack/shared/contracts';
import { connectRedis, exitOnStartupError, listen } from '@refstack/shared/platform';
import { buildApp } from './app.js';
import { KeyError } from './tokens/keyring.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env, {
    requiredSecrets: processSpec('auth').secrets,
    issuesOtps: true,
    smsCredentials: true,
  });
  const redis = await connectRedis(config, 'api');
  const app = await buildApp(config, { redis }).catch((error: unknown) => {
    throw error instanceof KeyError ? new ConfigError([error.message]) : error;
  });
  app.addHook('onClose', async () => void (await redis.quit()));
  await listen(app, 'auth', config.host, config.ports.auth);
}

main().catch((error: unknown) => exitOnStartupError('auth', error));
