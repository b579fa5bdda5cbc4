import { exitOnStartupError, listen, loadConfig } from '@refstack/shared';
import { buildApp } from './app.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const app = await buildApp(config);
  await listen(app, 'gateway', config.host, config.ports.gateway);
}

main().catch((error: unknown) => exitOnStartupError('gateway', error));
