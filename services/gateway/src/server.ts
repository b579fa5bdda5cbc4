import { loadConfig } from '@refstack/shared/contracts';
import { exitOnStartupError, listen } from '@refstack/shared/platform';
import { buildApp } from './app.js';
import { buildOperationsApp } from './operations.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const app = await buildApp(config);
  const operations = buildOperationsApp(app, config);
  await operations.listen({ host: config.opsHost, port: config.gateway.metricsPort });
  await listen(app, 'gateway', config.host, config.ports.gateway);
}

main().catch((error: unknown) => exitOnStartupError('gateway', error));
