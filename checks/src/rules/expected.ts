/**
 * What the contracts of @refstack/shared say the stack must look like, in the terms the rules use.
 * Only what the contracts do not know (the stores' containers, the database password) is spelled
 * out here.
 */
import {
  ENV_VARIABLES,
  EnvSchema,
  loadConfig,
  PROCESSES,
  SMS_URL_VARIABLES,
  type Env,
  type ProcessName,
  type ProcessSpec,
  type SecretName,
} from '@refstack/shared/contracts';

/** The app services are the contract's processes, under the same names in the compose file. */
export const appProcess = (name: string): ProcessSpec | undefined => PROCESSES.find((p) => p.name === name);

/** The store containers, on the standard ports of their images. */
export const STORES: Readonly<Record<string, number>> = { postgres: 5432, redis: 6379 };
export const PUBLIC_SERVICE: ProcessName = 'gateway';

// config.ts exports SecretName as a type only, so the names are repeated here; the mapped type
// makes tsc fail as soon as one is added to or dropped from SecretName.
const SECRET_NAMES: { readonly [K in SecretName]: K } = {
  INTERNAL_TOKEN: 'INTERNAL_TOKEN',
  OTP_HMAC_SECRET: 'OTP_HMAC_SECRET',
  JWT_PRIVATE_KEY: 'JWT_PRIVATE_KEY',
};
/** Secrets of the apps (loadConfig's SecretName). */
export const APP_SECRETS: readonly SecretName[] = Object.values(SECRET_NAMES);
/** The app secrets and the database container's password. */
export const SECRET_VARS: readonly string[] = [...APP_SECRETS, 'POSTGRES_PASSWORD'];

// loadConfig falls back to development secrets outside production; taking them from it keeps
// this list in step with config.ts, which does not export them.
const development = loadConfig({});
/** Values that must never appear in a deployment file. */
export const DEV_SECRET_VALUES: readonly string[] = [development.internalToken, development.otp.hmacSecret];

type VariableSchema = { default?: unknown; pattern?: unknown } | undefined;
const schemaOf = (name: string): VariableSchema =>
  (EnvSchema.properties as unknown as Record<string, VariableSchema>)[name];

export const schemaDefault = (name: string): unknown => schemaOf(name)?.default;

/**
 * Variables whose schema pattern demands a `scheme://`: each is the URL of another service. The
 * SMS providers' and the bot challenge's APIs, and the public address providers call back, are
 * outside the stack.
 */
const outsideUrlVars: readonly string[] = [...SMS_URL_VARIABLES, 'CAPTCHA_BASE_URL' satisfies keyof Env];
export const URL_VARS: readonly string[] = ENV_VARIABLES.filter((name) => {
  const pattern = schemaOf(name)?.pattern;
  return typeof pattern === 'string' && pattern.includes('://') && !outsideUrlVars.includes(name);
});
const startupUrlVars: readonly (keyof Env)[] = ['DATABASE_URL', 'REDIS_URL'];
/** The stores a service cannot start without, so it must wait for them. */
export const STARTUP_URL_VARS: ReadonlySet<string> = new Set(startupUrlVars);
