/** What `docker build` is handed: the .dockerignore. */
import { isIgnored } from '../parsers/dockerignore.js';
import type { Rule } from './rule.js';

/** Host state that would bloat the context, bust the cache, carry foreign binaries or leak a secret. */
const MUST_IGNORE = [
  '.env',
  '.git/HEAD',
  'node_modules/x',
  'services/auth/node_modules/x',
  'dist/x.js',
  'services/auth/dist/server.js',
  'packages/shared/.tap/x',
];
/** What the build stage installs and compiles from. */
const MUST_KEEP = [
  'pnpm-lock.yaml',
  'pnpm-workspace.yaml',
  'package.json',
  '.npmrc',
  'services/auth/src/server.ts',
  'checks/package.json',
];

export const buildContextRules = {
  '.dockerignore keeps host artefacts and secrets out of the build context': (a) => [
    ...MUST_IGNORE.filter((f) => !isIgnored(a.dockerignore, f)).map(
      (f) => `.dockerignore lets ${f} into the build context`,
    ),
    ...MUST_KEEP.filter((f) => isIgnored(a.dockerignore, f)).map(
      (f) => `.dockerignore drops ${f}, which the build needs`,
    ),
  ],
} satisfies Record<string, Rule>;
