import type { SecretName } from './config.js';

export interface ProcessSpec {
  name: 'referral' | 'auth' | 'sms-worker' | 'gateway';
  /** The workspace package that holds it. */
  pkg: '@refstack/referral' | '@refstack/auth' | '@refstack/gateway';
  /** Its entry point, relative to the package, as source and as built. */
  source: string;
  built: string;
  /** The variable that sets its public or internal port, if it listens. */
  portVar?: 'REFERRAL_PORT' | 'AUTH_PORT' | 'GATEWAY_PORT';
  /** Secrets production refuses to start without. */
  secrets: readonly SecretName[];
}

/**
 * The system's processes, in the order they start (each needs the ones before it to answer): what
 * `pnpm start`, the test harnesses, the benchmark and the container checks all run.
 */
export const PROCESSES: readonly ProcessSpec[] = [
  {
    name: 'referral',
    pkg: '@refstack/referral',
    source: 'src/server.ts',
    built: 'dist/server.js',
    portVar: 'REFERRAL_PORT',
    secrets: ['INTERNAL_TOKEN'],
  },
  {
    name: 'auth',
    pkg: '@refstack/auth',
    source: 'src/server.ts',
    built: 'dist/server.js',
    portVar: 'AUTH_PORT',
    secrets: ['INTERNAL_TOKEN', 'OTP_HMAC_SECRET', 'JWT_PRIVATE_KEY'],
  },
  { name: 'sms-worker', pkg: '@refstack/auth', source: 'src/sms-worker.ts', built: 'dist/sms-worker.js', secrets: [] },
  {
    name: 'gateway',
    pkg: '@refstack/gateway',
    source: 'src/server.ts',
    built: 'dist/server.js',
    portVar: 'GATEWAY_PORT',
    secrets: [],
  },
];

export type ProcessName = ProcessSpec['name'];

export function processSpec(name: ProcessName): ProcessSpec {
  const spec = PROCESSES.find((p) => p.name === name);
  if (!spec) throw new Error(`no process ${name}`);
  return spec;
}

/** The built entry point relative to the repository root, e.g. `services/auth/dist/sms-worker.js`. */
export function builtEntry(spec: ProcessSpec): string {
  return `services/${spec.pkg.replace('@refstack/', '')}/${spec.built}`;
}
