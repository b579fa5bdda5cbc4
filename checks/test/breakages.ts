/**
 * A deliberately broken copy of the artefacts for every rule, each of which the rule must catch: a
 * rule that cannot fail proves nothing. The mapped type makes tsc refuse a rule without an entry.
 */
import type { Texts } from '../src/artefacts.js';
import type { Compose, ComposeService } from '../src/parsers/compose.js';
import type { RuleName } from '../src/rules/index.js';

export interface Breakage {
  what: string;
  /** Edits the text before it is parsed. */
  texts?: (t: Texts) => Texts;
  /** Edits the parsed compose file in place. */
  compose?: (c: Compose) => void;
}

// A breakage whose text is not found would leave the artefact intact and "catch" nothing by luck.
function swap(text: string, from: string | RegExp, to: string): string {
  const next = text.replace(from, to);
  if (next === text) throw new Error(`breakage did not apply: ${String(from)} not found`);
  return next;
}
const svc = (c: Compose, name: string): ComposeService => {
  const s = c.services[name];
  if (!s) throw new Error(`no service ${name}`);
  return s;
};
const envMap = (s: ComposeService): Record<string, string | number | boolean | null> => {
  if (!s.environment || Array.isArray(s.environment)) throw new Error('expected an environment map');
  return s.environment;
};
const dockerfile =
  (from: string | RegExp, to: string) =>
  (t: Texts): Texts => ({
    ...t,
    dockerfile: swap(t.dockerfile, from, to),
  });
const envExample =
  (from: string | RegExp, to: string) =>
  (t: Texts): Texts => ({
    ...t,
    envExample: swap(t.envExample, from, to),
  });

export const breakages: { readonly [K in RuleName]: readonly Breakage[] } = {
  'every app service runs the entry point it is meant to, built from a real source file': [
    {
      what: 'a command naming a file that does not exist',
      compose: (c) => void (svc(c, 'sms-worker').command = ['node', 'dist/sms-wroker.js']),
    },
    {
      what: 'the gateway built from the auth target',
      compose: (c) => void (svc(c, 'gateway').build = { context: '.', target: 'auth' }),
    },
    {
      what: 'a shell-form CMD',
      texts: dockerfile(/CMD \["node", "dist\/sms-worker\.js"\]/, 'CMD node dist/sms-worker.js'),
    },
  ],
  'the app services set only env variables the config knows (ENV_VARIABLES)': [
    {
      what: 'an env name the config does not read',
      compose: (c) => void (envMap(svc(c, 'auth')).REDIS_HOST = 'redis'),
    },
  ],
  'compose defaults of config variables equal the schema defaults': [
    {
      what: 'a default that drifted from the schema',
      compose: (c) => void (envMap(svc(c, 'auth')).OTP_LENGTH = '${OTP_LENGTH:-4}'),
    },
  ],
  'every variable a process reads reaches it from .env or the shell': [
    {
      what: 'a variable the gateway reads not passed',
      compose: (c) => void delete envMap(svc(c, 'gateway')).GATEWAY_TRUSTED_PROXIES,
    },
    {
      what: 'a variable fixed in the compose file',
      compose: (c) => void (envMap(svc(c, 'referral')).DATABASE_POOL_SIZE = '10'),
    },
    {
      what: 'a variable dropped from the SMS block auth and the worker share',
      texts: (t) => ({ ...t, compose: swap(t.compose, /^ {2}SMS_CIRCUIT_MIN_CALLS: .*\n/m, '') }),
    },
    {
      what: 'one of two timeouts checked together',
      compose: (c) => void (envMap(svc(c, 'sms-worker')).REFERRAL_TIMEOUT_MS = '${REFERRAL_TIMEOUT_MS:-5000}'),
    },
  ],
  'only the gateway publishes a port, and the one it listens on': [
    { what: 'redis published', compose: (c) => void (svc(c, 'redis').ports = ['6379:6379']) },
    { what: 'postgres published', compose: (c) => void (svc(c, 'postgres').ports = ['5432:5432']) },
    {
      what: 'the gateway published on a port it does not listen on',
      compose: (c) => void (svc(c, 'gateway').ports = ['8080:3000']),
    },
  ],
  'redis keeps its data (appendonly yes) and never evicts (noeviction)': [
    {
      what: 'an evicting redis',
      compose: (c) => void (svc(c, 'redis').command = 'redis-server --appendonly yes --maxmemory-policy allkeys-lru'),
    },
    {
      what: 'redis without AOF',
      compose: (c) => void (svc(c, 'redis').command = ['redis-server', '--maxmemory-policy', 'noeviction']),
    },
  ],
  'every service restarts unless stopped and gets 10 s to shut down': [
    { what: 'no restart policy', compose: (c) => void delete svc(c, 'postgres').restart },
    { what: 'the default 10 s replaced', compose: (c) => void (svc(c, 'sms-worker').stop_grace_period = '1s') },
  ],
  'every service has a CMD-SHELL healthcheck': [
    { what: 'no healthcheck', compose: (c) => void delete svc(c, 'sms-worker').healthcheck },
    {
      what: 'a CMD array healthcheck',
      compose: (c) => void (svc(c, 'postgres').healthcheck = { test: ['CMD', 'pg_isready'] }),
    },
  ],
  'depends_on waits for healthy services, without cycles': [
    { what: 'a short-form depends_on', compose: (c) => void (svc(c, 'gateway').depends_on = ['auth', 'referral']) },
    {
      what: 'service_started',
      compose: (c) =>
        void (svc(c, 'referral').depends_on = {
          postgres: { condition: 'service_started' },
          redis: { condition: 'service_healthy' },
        }),
    },
    {
      what: 'a cycle',
      compose: (c) => void (svc(c, 'redis').depends_on = { gateway: { condition: 'service_healthy' } }),
    },
  ],
  'service URLs point at compose services, on the ports they listen on': [
    {
      what: 'a wrong upstream port',
      compose: (c) => void (envMap(svc(c, 'referral')).AUTH_URL = 'http://auth:3000'),
    },
    {
      what: 'a store the service does not wait for',
      compose: (c) => void (svc(c, 'referral').depends_on = { redis: { condition: 'service_healthy' } }),
    },
  ],
  'the runtime images run as a non-root user, in production mode, on all interfaces': [
    { what: 'USER root', texts: dockerfile(/^USER node$/m, 'USER root') },
    { what: 'no USER at all', texts: dockerfile(/^USER node$/m, '') },
    { what: 'operations ports left on loopback', texts: dockerfile(/ OPS_HOST=0\.0\.0\.0/, '') },
    { what: 'compose overriding the user', compose: (c) => void (svc(c, 'gateway').user = '0:0') },
  ],
  'secrets come only from ${VAR:?...} interpolation, and only where needed': [
    { what: 'a literal secret', compose: (c) => void (envMap(svc(c, 'auth')).INTERNAL_TOKEN = 'f'.repeat(64)) },
    {
      what: 'a secret with a default',
      compose: (c) =>
        void (envMap(svc(c, 'auth')).OTP_HMAC_SECRET = '${OTP_HMAC_SECRET:-changeme-changeme-changeme-changeme}'),
    },
    {
      what: 'a secret handed to the gateway',
      compose: (c) => void (envMap(svc(c, 'gateway')).INTERNAL_TOKEN = '${INTERNAL_TOKEN:?set it}'),
    },
    {
      what: 'a secret the server requires left out',
      compose: (c) => void delete envMap(svc(c, 'auth')).JWT_PRIVATE_KEY,
    },
    {
      what: 'a literal database password',
      compose: (c) =>
        void (envMap(svc(c, 'referral')).DATABASE_URL = 'postgres://referral:hunter2@postgres:5432/referral'),
    },
    { what: 'a secret in the Dockerfile', texts: dockerfile(/^USER node$/m, 'USER node\nENV OTP_HMAC_SECRET=abc') },
    {
      what: 'a filled-in .env.example',
      texts: envExample(/^INTERNAL_TOKEN=$/m, 'INTERNAL_TOKEN=0123456789abcdef0123456789abcdef'),
    },
  ],
  '.env.example lists exactly the variables the compose file reads, interpolated portably': [
    { what: 'a variable missing from .env.example', texts: envExample(/^.*GATEWAY_PORT=.*$/m, '') },
    {
      what: 'a stale variable in .env.example',
      texts: (t) => ({ ...t, envExample: `${t.envExample}\n# NO_LONGER_USED=1\n` }),
    },
    { what: 'an empty default', compose: (c) => void (envMap(svc(c, 'gateway')).LOG_LEVEL = '${LOG_LEVEL:-}') },
    {
      what: 'an unescaped $ in a command',
      compose: (c) =>
        void (svc(c, 'redis').healthcheck = { test: ['CMD-SHELL', 'redis-cli ping | grep -q "$(echo PONG)"'] }),
    },
  ],
  'auth trusts X-Forwarded-For from its network only, not from everyone': [
    { what: 'trust everyone', compose: (c) => void (envMap(svc(c, 'auth')).TRUSTED_PROXIES = '0.0.0.0/0') },
    { what: 'not set', compose: (c) => void delete envMap(svc(c, 'auth')).TRUSTED_PROXIES },
  ],
  '.dockerignore keeps host artefacts and secrets out of the build context': [
    {
      what: '.env not ignored',
      texts: (t) => ({ ...t, dockerignore: swap(t.dockerignore, /^\.env$/m, '') }),
    },
    {
      what: 'node_modules re-included',
      texts: (t) => ({ ...t, dockerignore: `${t.dockerignore}\n!services/auth/node_modules\n` }),
    },
    {
      what: 'the lockfile ignored',
      texts: (t) => ({ ...t, dockerignore: `${t.dockerignore}\n*.yaml\n` }),
    },
  ],
};
