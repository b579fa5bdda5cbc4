/**
 * `pnpm bench [--quick] [--soak] [--only=<text>]`: the whole system under load next to a bare
 * Fastify server, in one run on one machine. Results go to bench/results/ only.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { failures, log, machine, results, writeResults } from './report.js';
import {
  alternateProfiles,
  Bench,
  readScenarios,
  smsLatency,
  SmsLines,
  soak,
  warmUp,
  writeScenarios,
  type Settings,
} from './scenarios.js';
import { seed } from './seed.js';
import { startBareServer, startStack } from './stack.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_URL = process.env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

const quick = process.argv.includes('--quick');
const settings: Settings = {
  quick,
  only: process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length),
  durationSeconds: quick ? 3 : 15,
  connections: 50,
};
const withSoak = process.argv.includes('--soak') && settings.only === undefined;

async function main(): Promise<void> {
  const stack = await startStack({
    root: ROOT,
    adminDatabaseUrl: ADMIN_URL,
    redisUrl: REDIS_URL,
    logLevel: process.env['BENCH_LOG_LEVEL'] ?? 'info',
  });
  const stops: Array<() => Promise<void> | void> = [() => stack.stop()];
  try {
    const bare = await startBareServer(ROOT);
    stops.unshift(() => bare.stop());
    log('stack ready; seeding');
    const seeded = await seed(stack.databaseUrl);
    const target = {
      gateway: stack.gateway,
      referral: stack.referral,
      bare: bare.url,
      ordinary: `Bearer ${stack.accessToken(seeded.ordinary)}`,
      popular: `Bearer ${stack.accessToken(seeded.popular)}`,
    };
    const bench = new Bench(settings, bare.url);

    await warmUp(bench, target);
    const rss = withSoak ? await soak(bench, target, stack.pids) : undefined;
    await readScenarios(bench, target);
    const alternated = await alternateProfiles(bench, target);

    const sms = new SmsLines(stack.logFile);
    stops.unshift(() => sms.close());
    await writeScenarios(bench, target, sms, seeded, stack.accessToken);
    if (settings.only !== undefined) return;
    const latency = await smsLatency(target, sms, quick);

    const measured = results(
      { ...settings, scenarios: bench.scenarios, smsLatency: latency, alternated, soak: rss },
      await machine(ADMIN_URL, REDIS_URL),
    );
    const files = writeResults(join(ROOT, 'bench/results'), measured);
    log(`results: ${files.join(', ')}`);
    const failed = failures(measured);
    if (failed.length > 0) throw new Error(`scenarios with errors: ${failed.join(', ')}`);
  } finally {
    for (const stop of stops) await stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`[bench] ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
