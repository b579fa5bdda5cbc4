// `pnpm test:scale [--users=<n>]`: the scale checks at n users (1,000,000 by default, at least that).
import { spawnSync } from 'node:child_process';

const users = process.argv.find((a) => a.startsWith('--users='))?.slice('--users='.length) ?? '1000000';
if (!/^\d+$/.test(users) || Number(users) > 16_777_215) {
  // The seeded invite codes are the users' ids in six hex digits.
  process.stderr.write(`--users takes a number up to 16777215, not ${users}\n`);
  process.exit(2);
}
// Seeding grows with the users: about 10 s per million here, the index builds included.
const timeoutSeconds = Math.max(300, Math.ceil(Number(users) / 1_000_000) * 120);
const result = spawnSync(
  'tap',
  [
    '--allow-incomplete-coverage',
    `--timeout=${timeoutSeconds}`,
    '--jobs=1',
    'test-scale/explain.test.ts',
    'test-scale/flat-cost.test.ts',
  ],
  { stdio: 'inherit', env: { ...process.env, SCALE_USERS: users }, shell: false },
);
process.exit(result.status ?? 1);
