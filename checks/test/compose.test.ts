/**
 * Checks the container artefacts (Dockerfile, docker-compose.yml, .env.example, .dockerignore)
 * without a container engine: they are parsed and held against the repository and the config
 * schema of @refstack/shared.
 *
 * Each rule is a function from the parsed artefacts to a list of problems. The real files must
 * give none, and every rule is also run against a deliberately broken copy, which must give at
 * least one: a rule that cannot fail proves nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PROCESSES } from '@refstack/shared/contracts';
import { parse as parseYaml } from 'yaml';
import { ENV_VARIABLES, EnvSchema } from '@refstack/shared/contracts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

// ---- What the contract and the code say the stack must look like --------------------------------

interface AppService {
  /** Workspace package whose build output the image runs. */
  pkg: string;
  /** The source of the entry point, relative to the package directory. */
  entry: string;
  /** The env variable naming the port it listens on; the worker has none. */
  portVar?: 'AUTH_PORT' | 'REFERRAL_PORT' | 'GATEWAY_PORT';
}

const APP_SERVICES: Record<string, AppService> = {
  auth: { pkg: '@refstack/auth', entry: 'src/server.ts', portVar: 'AUTH_PORT' },
  'sms-worker': { pkg: '@refstack/auth', entry: 'src/sms-worker.ts' },
  referral: { pkg: '@refstack/referral', entry: 'src/server.ts', portVar: 'REFERRAL_PORT' },
  gateway: { pkg: '@refstack/gateway', entry: 'src/server.ts', portVar: 'GATEWAY_PORT' },
};
const STORES: Record<string, number> = { postgres: 5432, redis: 6379 };
const PUBLIC_SERVICE = 'gateway';
/** Secrets of the apps (loadConfig's SecretName) and of the database container. */
const APP_SECRETS = ['INTERNAL_TOKEN', 'OTP_HMAC_SECRET', 'JWT_PRIVATE_KEY'] as const;
const SECRET_VARS = [...APP_SECRETS, 'POSTGRES_PASSWORD'];
/** The development fallbacks in config.ts; they must never appear in deployment files. */
const DEV_SECRET_VALUES = ['dev-internal-token-do-not-use-in-production', 'dev-otp-hmac-secret-do-not-use-in-production'];
/** Env variables whose value is a URL of another service, and the stores a service cannot start without. */
const URL_VARS = ['AUTH_URL', 'REFERRAL_URL', 'JWKS_URL', 'DATABASE_URL', 'REDIS_URL'];
const STARTUP_URL_VARS = ['DATABASE_URL', 'REDIS_URL'];

const schemaDefault = (name: string): unknown =>
  (EnvSchema.properties as unknown as Record<string, { default?: unknown } | undefined>)[name]?.default;

// ---- Compose variable interpolation --------------------------------------------------------------

interface VarRef {
  name: string;
  /** `-`, `:-`, `?`, `:?`, `+`, `:+`, or '' for a bare `$NAME` / `${NAME}`. */
  op: string;
  arg: string;
}

/** Splits a compose string into literal text and `$` references, as compose does; `$$` is a literal `$`. */
function scanVars(value: string): { refs: VarRef[]; invalid: string[] } {
  const refs: VarRef[] = [];
  const invalid: string[] = [];
  const re = /\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([\s\S]?))/g;
  for (const m of value.matchAll(re)) {
    if (m[1]) continue;
    if (m[2]) refs.push({ name: m[2], op: '', arg: '' });
    else if (m[3]) refs.push({ name: m[3], op: m[4] ?? '', arg: m[5] ?? '' });
    else invalid.push(value.slice(m.index, m.index + 12));
  }
  return { refs, invalid };
}

/** Compose's interpolation; a missing required variable throws, like `docker compose config`. */
function interpolate(value: string, vars: Record<string, string | undefined>): string {
  const re = /\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\})/g;
  return value.replace(re, (_all, dollar: string | undefined, bare: string | undefined, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (dollar) return '$';
    const key = (bare ?? name) as string;
    const set = vars[key];
    const present = op?.startsWith(':') ? set !== undefined && set !== '' : set !== undefined;
    switch (op?.replace(':', '')) {
      case '-':
        return present ? (set as string) : (arg ?? '');
      case '?':
        if (!present) throw new Error(`required variable ${key} is missing: ${arg}`);
        return set as string;
      case '+':
        return present ? (arg ?? '') : '';
      default:
        return set ?? '';
    }
  });
}

// ---- The compose file -----------------------------------------------------------------------------

interface ComposeService {
  image?: string;
  build?: string | { context?: string; target?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target?: number; published?: string | number })[];
  expose?: unknown[];
  depends_on?: string[] | Record<string, { condition?: string } | null>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  user?: string;
  network_mode?: string;
  [key: string]: unknown;
}
interface Compose {
  services: Record<string, ComposeService>;
  [key: string]: unknown;
}

function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment;
  if (!env) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((item) => {
      const eq = item.indexOf('=');
      return eq < 0 ? [item, ''] : [item.slice(0, eq), item.slice(eq + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Every string value anywhere in the compose file (keys cannot be interpolated, so they are left out). */
function stringsOf(node: unknown, at = ''): { at: string; value: string }[] {
  if (typeof node === 'string') return [{ at, value: node }];
  if (Array.isArray(node)) return node.flatMap((item, i) => stringsOf(item, `${at}[${i}]`));
  if (node && typeof node === 'object') return Object.entries(node).flatMap(([k, v]) => stringsOf(v, at ? `${at}.${k}` : k));
  return [];
}

/** An env value as the container would see it with only the compose defaults in play. */
function withDefaults(value: string): string {
  return interpolate(value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*):?\?[^}]*\}/g, 'SECRET'), {});
}

function commandWords(command: string | string[] | undefined): string[] | undefined {
  if (command === undefined) return undefined;
  return Array.isArray(command) ? command.map(String) : command.trim().split(/\s+/);
}

// ---- The Dockerfile -------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}
interface Copy {
  from: string | undefined;
  sources: string[];
  /** Absolute destination inside the image. */
  dest: string;
}
interface StageState {
  workdir: string;
  user: string | undefined;
  /** Exec form only; `shell` holds a shell-form CMD. */
  cmd: string[] | undefined;
  shellCmd: string | undefined;
  env: Record<string, string>;
  copies: Copy[];
  /** The first stage of the chain that is an image, not another stage. */
  image: string;
}
interface Dockerfile {
  args: Record<string, string>;
  stages: Stage[];
  instructions: Instruction[];
}

function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let buffer = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    // Comments (and the `# syntax=` directive) are dropped, also between continued lines.
    if (/^\s*#/.test(line)) return;
    if (buffer === '') start = i + 1;
    if (/\\\s*$/.test(line)) {
      buffer += `${line.replace(/\\\s*$/, '')} `;
      return;
    }
    buffer += line;
    const logical = buffer.trim();
    buffer = '';
    if (!logical) return;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(logical);
    if (m) instructions.push({ keyword: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: start });
  });

  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const base = (words[0] ?? '').replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_all, name: string) => args[name] ?? '');
      const name = words[1]?.toUpperCase() === 'AS' ? (words[2] ?? '') : String(stages.length);
      stages.push({ name, base, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [key, ...rest] = ins.args.split('=');
        args[(key as string).trim()] = rest.join('=').trim().replace(/^"(.*)"$/, '$1');
      }
    } else {
      (stages[stages.length - 1] as Stage).instructions.push(ins);
    }
  }
  return { args, stages, instructions };
}

function parseEnvInstruction(args: string): Record<string, string> {
  if (!args.includes('=')) {
    const [key, ...rest] = args.split(/\s+/);
    return { [key as string]: rest.join(' ') };
  }
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    out[m[1] as string] = (m[2] as string).replace(/^"([\s\S]*)"$/, '$1');
  }
  return out;
}

function stageState(dockerfile: Dockerfile, name: string, seen: string[] = []): StageState {
  const stage = dockerfile.stages.find((s) => s.name === name);
  if (!stage) throw new Error(`no stage named ${name}`);
  if (seen.includes(name)) throw new Error(`stage cycle through ${name}`);
  const parent = dockerfile.stages.some((s) => s.name === stage.base) ? stageState(dockerfile, stage.base, [...seen, name]) : undefined;
  const state: StageState = parent
    ? { ...parent, env: { ...parent.env }, copies: [...parent.copies] }
    : { workdir: '/', user: undefined, cmd: undefined, shellCmd: undefined, env: {}, copies: [], image: stage.base };
  for (const ins of stage.instructions) {
    switch (ins.keyword) {
      case 'WORKDIR':
        state.workdir = path.posix.resolve(state.workdir, ins.args);
        break;
      case 'USER':
        state.user = ins.args;
        break;
      case 'ENV':
        Object.assign(state.env, parseEnvInstruction(ins.args));
        break;
      case 'CMD':
        if (ins.args.startsWith('[')) {
          state.cmd = JSON.parse(ins.args) as string[];
          state.shellCmd = undefined;
        } else {
          state.cmd = undefined;
          state.shellCmd = ins.args;
        }
        break;
      case 'COPY':
      case 'ADD': {
        const words = ins.args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const dest = path.posix.resolve(state.workdir, paths[paths.length - 1] ?? '.');
        state.copies.push({ from, sources: paths.slice(0, -1), dest });
        break;
      }
    }
  }
  return state;
}

/** `pnpm deploy --filter <pkg> ... <dir>` lines of a stage: deploy directory → package name. */
function deploysOf(dockerfile: Dockerfile, stageName: string): Map<string, string> {
  const out = new Map<string, string>();
  const stage = dockerfile.stages.find((s) => s.name === stageName);
  for (const ins of stage?.instructions ?? []) {
    if (ins.keyword !== 'RUN') continue;
    for (const segment of ins.args.split(/&&|;|\|\|/)) {
      const words = segment.trim().split(/\s+/);
      const at = words.indexOf('deploy');
      if (at < 1 || words[at - 1] !== 'pnpm') continue;
      let pkg: string | undefined;
      const positional: string[] = [];
      for (let i = at + 1; i < words.length; i += 1) {
        const w = words[i] as string;
        if (w === '--filter' || w === '-F') pkg = words[++i];
        else if (w.startsWith('--filter=')) pkg = w.slice('--filter='.length);
        else if (!w.startsWith('-')) positional.push(w);
      }
      const dir = positional[positional.length - 1];
      if (pkg && dir) out.set(path.posix.resolve('/', dir), pkg);
    }
  }
  return out;
}

// ---- The repository -------------------------------------------------------------------------------

interface Workspace {
  /** Package name → directory relative to the root. */
  packages: Map<string, string>;
  exists(file: string): boolean;
  read(file: string): string;
}

function loadWorkspace(): Workspace {
  const globs = (parseYaml(read('pnpm-workspace.yaml')) as { packages?: string[] }).packages ?? [];
  const dirs = globs.flatMap((glob) => {
    if (!glob.endsWith('/*')) return [glob];
    const parent = glob.slice(0, -2);
    if (!existsSync(path.join(ROOT, parent))) return [];
    return readdirSync(path.join(ROOT, parent), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${parent}/${d.name}`);
  });
  const packages = new Map<string, string>();
  for (const dir of dirs) {
    const manifest = path.join(ROOT, dir, 'package.json');
    if (existsSync(manifest)) packages.set((JSON.parse(readFileSync(manifest, 'utf8')) as { name: string }).name, dir);
  }
  return { packages, exists: (file) => existsSync(path.join(ROOT, file)), read };
}

/** rootDir and outDir of a package's build (tsconfig.json; tsc's usual src/dist otherwise). */
function buildDirs(ws: Workspace, dir: string): { rootDir: string; outDir: string } {
  let options: { rootDir?: string; outDir?: string } = {};
  try {
    options = (JSON.parse(ws.read(`${dir}/tsconfig.json`)) as { compilerOptions?: typeof options }).compilerOptions ?? {};
  } catch {
    // No tsconfig or one with comments: fall back to the convention.
  }
  const clean = (p: string) => path.posix.normalize(p).replace(/^\.\//, '').replace(/\/$/, '');
  return { rootDir: clean(options.rootDir ?? 'src'), outDir: clean(options.outDir ?? 'dist') };
}

// ---- The artefacts together -----------------------------------------------------------------------

interface Texts {
  compose: string;
  dockerfile: string;
  envExample: string;
  dockerignore: string;
}
interface Artefacts {
  compose: Compose;
  dockerfile: Dockerfile;
  envExample: string;
  dockerignore: string;
}

const parseArtefacts = (texts: Texts): Artefacts => ({
  compose: parseYaml(texts.compose, { merge: true }) as Compose,
  dockerfile: parseDockerfile(texts.dockerfile),
  envExample: texts.envExample,
  dockerignore: texts.dockerignore,
});

const TEXTS: Texts = {
  compose: read('docker-compose.yml'),
  dockerfile: read('Dockerfile'),
  envExample: read('.env.example'),
  dockerignore: read('.dockerignore'),
};
const workspace = loadWorkspace();

type Rule = (a: Artefacts, ws: Workspace) => string[];

function targetOf(service: ComposeService): string | undefined {
  return typeof service.build === 'object' ? service.build.target : undefined;
}

/** Which source file in the repository a compose service ends up running. */
function resolveEntry(a: Artefacts, ws: Workspace, name: string, service: ComposeService): { source?: string; problems: string[] } {
  const problems: string[] = [];
  const target = targetOf(service);
  if (!target) return { problems: [`${name}: build.target must name a Dockerfile stage`] };
  if (!a.dockerfile.stages.some((s) => s.name === target)) return { problems: [`${name}: Dockerfile has no stage "${target}"`] };
  const state = stageState(a.dockerfile, target);
  const words = commandWords(service.command) ?? state.cmd;
  if (!words) {
    return { problems: [`${name}: stage ${target} needs an exec-form CMD (a shell-form CMD makes sh PID 1, which does not pass SIGTERM on)`] };
  }
  if (words[0] !== 'node') return { problems: [`${name}: command ${JSON.stringify(words)} does not start node`] };
  const script = words.slice(1).find((w) => !w.startsWith('-'));
  if (!script) return { problems: [`${name}: command ${JSON.stringify(words)} names no script`] };
  const inImage = path.posix.resolve(state.workdir, script);

  const copy = [...state.copies].reverse().find((c) => inImage === c.dest || inImage.startsWith(`${c.dest}/`));
  if (!copy || !copy.from || copy.sources.length !== 1) {
    return { problems: [`${name}: nothing in stage ${target} copies ${inImage} from a build stage`] };
  }
  const fromBuild = path.posix.join(copy.sources[0] as string, inImage.slice(copy.dest.length));
  const deploys = deploysOf(a.dockerfile, copy.from);
  const deployDir = [...deploys.keys()].find((d) => fromBuild.startsWith(`${d}/`));
  if (!deployDir) return { problems: [`${name}: ${fromBuild} (stage ${copy.from}) is not inside any \`pnpm deploy\` output`] };
  const pkg = deploys.get(deployDir) as string;
  const dir = ws.packages.get(pkg);
  if (!dir) return { problems: [`${name}: \`pnpm deploy --filter ${pkg}\` names no workspace package`] };

  // The runtime needs the package's manifest ("type": "module") and its production node_modules too.
  for (const needed of ['package.json', 'node_modules']) {
    const ok = state.copies.some(
      (c) => c.from === copy.from && c.sources.length === 1 && c.sources[0] === `${deployDir}/${needed}` && c.dest === path.posix.join(state.workdir, needed),
    );
    if (!ok) problems.push(`${name}: stage ${target} must copy ${deployDir}/${needed} to ${path.posix.join(state.workdir, needed)}`);
  }

  const { rootDir, outDir } = buildDirs(ws, dir);
  const inPackage = fromBuild.slice(deployDir.length + 1);
  if (!inPackage.startsWith(`${outDir}/`)) {
    problems.push(`${name}: ${inPackage} is not build output (outDir ${outDir}) of ${pkg}`);
    return { problems };
  }
  const stem = `${rootDir}/${inPackage.slice(outDir.length + 1)}`.replace(/\.(m?)js$/, '');
  const candidates = [`${stem}.ts`, `${stem}.mts`, `${stem}.js`].map((f) => `${dir}/${f}`);
  const source = candidates.find((f) => ws.exists(f));
  if (!source) problems.push(`${name}: runs ${pkg}/${inPackage}, but ${candidates[0]} does not exist`);
  return { source, problems };
}

// ---- The rules ------------------------------------------------------------------------------------

const rules: Record<string, Rule> = {
  'every app service runs the entry point it is meant to, built from a real source file': (a, ws) =>
    Object.entries(APP_SERVICES).flatMap(([name, expected]) => {
      const service = a.compose.services[name];
      if (!service) return [`service ${name} is missing`];
      const { source, problems } = resolveEntry(a, ws, name, service);
      const want = `${ws.packages.get(expected.pkg) ?? expected.pkg}/${expected.entry}`;
      if (source && source !== want) problems.push(`${name}: runs ${source}, expected ${want}`);
      return problems;
    }),

  'the app services set only env variables the config knows (ENV_VARIABLES)': (a) => {
    const known = new Set(ENV_VARIABLES);
    const problems: string[] = [];
    for (const name of Object.keys(APP_SERVICES)) {
      for (const key of Object.keys(environmentOf(a.compose.services[name] ?? {}))) {
        if (!known.has(key)) problems.push(`${name}: ${key} is not a config variable`);
      }
      const target = targetOf(a.compose.services[name] ?? {});
      if (target && a.dockerfile.stages.some((s) => s.name === target)) {
        for (const key of Object.keys(stageState(a.dockerfile, target).env)) {
          if (!known.has(key)) problems.push(`Dockerfile stage ${target}: ENV ${key} is not a config variable`);
        }
      }
    }
    return problems;
  },

  'compose defaults of config variables equal the schema defaults': (a) =>
    stringsOf(a.compose).flatMap(({ at, value }) =>
      scanVars(value)
        .refs.filter((r) => r.op.endsWith('-') && schemaDefault(r.name) !== undefined && String(schemaDefault(r.name)) !== r.arg)
        .map((r) => `${at}: \${${r.name}${r.op}${r.arg}} but the config default is ${String(schemaDefault(r.name))}`),
    ),

  'only the gateway publishes a port, and the one it listens on': (a) => {
    const problems: string[] = [];
    for (const [name, service] of Object.entries(a.compose.services)) {
      if (service.network_mode === 'host') problems.push(`${name}: network_mode host bypasses port isolation`);
      if (name !== PUBLIC_SERVICE && service.ports?.length) problems.push(`${name}: publishes ${JSON.stringify(service.ports)}`);
    }
    const gateway = a.compose.services[PUBLIC_SERVICE];
    const ports = gateway?.ports ?? [];
    if (ports.length !== 1) return [...problems, `${PUBLIC_SERVICE}: must publish exactly one port`];
    const port = ports[0];
    const inner = typeof port === 'object' ? String(port.target) : (withDefaults(String(port)).split(':').pop() ?? '').replace(/\/tcp$/, '');
    const env = environmentOf(gateway ?? {});
    const listens = env.GATEWAY_PORT !== undefined ? withDefaults(env.GATEWAY_PORT) : String(schemaDefault('GATEWAY_PORT'));
    if (inner !== listens) problems.push(`${PUBLIC_SERVICE}: publishes container port ${inner} but listens on ${listens}`);
    return problems;
  },

  'redis keeps its data (appendonly yes) and never evicts (noeviction)': (a) => {
    const words = commandWords(a.compose.services.redis?.command) ?? [];
    const option = (key: string) => {
      const i = words.indexOf(`--${key}`);
      return i >= 0 ? words[i + 1] : undefined;
    };
    const problems: string[] = [];
    if (words[0] !== 'redis-server') problems.push(`redis: command must start redis-server, got ${JSON.stringify(words)}`);
    if (option('appendonly') !== 'yes') problems.push('redis: needs --appendonly yes');
    if (option('maxmemory-policy') !== 'noeviction') problems.push('redis: needs --maxmemory-policy noeviction (BullMQ)');
    return problems;
  },

  'every service restarts unless stopped and gets 10 s to shut down': (a) =>
    Object.entries(a.compose.services).flatMap(([name, service]) => [
      ...(service.restart === 'unless-stopped' ? [] : [`${name}: restart must be unless-stopped, got ${String(service.restart)}`]),
      ...(service.stop_grace_period === '10s' ? [] : [`${name}: stop_grace_period must be 10s, got ${String(service.stop_grace_period)}`]),
    ]),

  'every service has a CMD-SHELL healthcheck': (a) =>
    Object.entries(a.compose.services).flatMap(([name, service]) => {
      const test = service.healthcheck?.test;
      if (service.healthcheck?.disable) return [`${name}: healthcheck disabled`];
      if (!Array.isArray(test) || test[0] !== 'CMD-SHELL' || test.length !== 2 || !String(test[1]).trim()) {
        return [`${name}: healthcheck.test must be ["CMD-SHELL", "<command>"], got ${JSON.stringify(test)}`];
      }
      return [];
    }),

  'depends_on waits for healthy services, without cycles': (a) => {
    const problems: string[] = [];
    const graph = new Map<string, string[]>();
    for (const [name, service] of Object.entries(a.compose.services)) {
      const deps = service.depends_on;
      if (deps === undefined) {
        graph.set(name, []);
        continue;
      }
      if (Array.isArray(deps)) {
        problems.push(`${name}: depends_on is a list; use the long form with condition: service_healthy`);
        graph.set(name, deps);
        continue;
      }
      graph.set(name, Object.keys(deps));
      for (const [dep, spec] of Object.entries(deps)) {
        if (spec?.condition !== 'service_healthy') problems.push(`${name}: depends on ${dep} with condition ${String(spec?.condition)}`);
        const target = a.compose.services[dep];
        if (!target) problems.push(`${name}: depends on unknown service ${dep}`);
        else if (!target.healthcheck?.test) problems.push(`${name}: depends on ${dep}, which has no healthcheck`);
      }
    }
    const visit = (node: string, trail: string[]): void => {
      if (trail.includes(node)) {
        problems.push(`dependency cycle: ${[...trail, node].join(' -> ')}`);
        return;
      }
      for (const next of graph.get(node) ?? []) visit(next, [...trail, node]);
    };
    for (const node of graph.keys()) visit(node, []);
    return [...new Set(problems)];
  },

  'service URLs point at compose services, on the ports they listen on': (a) => {
    const problems: string[] = [];
    const listening = (host: string): string | undefined => {
      if (host in STORES) return String(STORES[host]);
      const portVar = APP_SERVICES[host]?.portVar;
      if (!portVar) return undefined;
      const value = environmentOf(a.compose.services[host] ?? {})[portVar];
      return value !== undefined ? withDefaults(value) : String(schemaDefault(portVar));
    };
    for (const name of Object.keys(APP_SERVICES)) {
      const service = a.compose.services[name] ?? {};
      const env = environmentOf(service);
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const key of URL_VARS) {
        const value = env[key];
        if (value === undefined) continue;
        let url: URL;
        try {
          url = new URL(withDefaults(value));
        } catch {
          problems.push(`${name}: ${key} is not a URL`);
          continue;
        }
        const host = url.hostname;
        if (!a.compose.services[host]) {
          problems.push(`${name}: ${key} points at ${host}, which is not a service here`);
          continue;
        }
        const port = url.port || (url.protocol === 'http:' ? '80' : '');
        if (port !== listening(host)) problems.push(`${name}: ${key} uses port ${port}, but ${host} listens on ${String(listening(host))}`);
        const mustWait = STARTUP_URL_VARS.includes(key) || name === PUBLIC_SERVICE;
        if (mustWait && !deps.includes(host)) problems.push(`${name}: uses ${host} (${key}) but does not depend on it`);
      }
    }
    if (!environmentOf(a.compose.services[PUBLIC_SERVICE] ?? {}).AUTH_URL) problems.push(`${PUBLIC_SERVICE}: AUTH_URL must be set`);
    if (!environmentOf(a.compose.services[PUBLIC_SERVICE] ?? {}).REFERRAL_URL) problems.push(`${PUBLIC_SERVICE}: REFERRAL_URL must be set`);
    return problems;
  },

  'the runtime images run as a non-root user, in production mode, on all interfaces': (a) =>
    Object.entries(a.compose.services).flatMap(([name, service]) => {
      const problems: string[] = [];
      const isRoot = (user: string | undefined) => user === undefined || /^(root|0)(:.*)?$/.test(user.trim());
      if (service.user !== undefined && isRoot(String(service.user))) problems.push(`${name}: user: ${service.user} runs as root`);
      const target = targetOf(service);
      if (!target || !a.dockerfile.stages.some((s) => s.name === target)) return problems;
      const state = stageState(a.dockerfile, target);
      if (service.user === undefined && isRoot(state.user)) problems.push(`${name}: stage ${target} runs as root (no USER, or USER root)`);
      if (state.env.NODE_ENV !== 'production') problems.push(`${name}: stage ${target} must set NODE_ENV=production`);
      if (state.env.HOST !== '0.0.0.0') problems.push(`${name}: stage ${target} must set HOST=0.0.0.0`);
      return problems;
    }),

  'secrets come only from ${VAR:?...} interpolation, and only where needed': (a) => {
    const problems: string[] = [];
    const required = (name: string): readonly string[] => PROCESSES.find((p) => p.name === name)?.secrets ?? [];
    for (const [name, service] of Object.entries(a.compose.services)) {
      const env = environmentOf(service);
      for (const [key, value] of Object.entries(env)) {
        if (!SECRET_VARS.includes(key)) continue;
        const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$/.exec(value);
        if (!m) problems.push(`${name}: ${key} must be exactly \${${key}:?<message>} (required, no default), got ${JSON.stringify(value.slice(0, 40))}`);
        else if (m[1] !== key) problems.push(`${name}: ${key} is taken from \${${String(m[1])}}`);
      }
      if (name in APP_SERVICES) {
        const needs = required(name);
        for (const secret of needs) if (!(secret in env)) problems.push(`${name}: its server requires ${secret}, compose does not pass it`);
        for (const secret of APP_SECRETS) if (secret in env && !needs.includes(secret)) problems.push(`${name}: gets ${secret} without needing it`);
      }
      if (env.DATABASE_URL !== undefined) {
        const password = /^postgres(?:ql)?:\/\/[^:@/]+:([^@]*)@/.exec(env.DATABASE_URL)?.[1];
        if (password !== undefined && !/^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/.test(password)) {
          problems.push(`${name}: the DATABASE_URL password must be \${POSTGRES_PASSWORD:?...}`);
        }
      }
    }
    const everything = [...stringsOf(a.compose).map((s) => s.value), a.dockerfile.instructions.map((i) => i.args).join('\n')];
    for (const text of everything) {
      if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) problems.push('a PEM private key is written into the compose file or Dockerfile');
      for (const dev of DEV_SECRET_VALUES) if (text.includes(dev)) problems.push(`a development secret (${dev}) is written into the compose file or Dockerfile`);
    }
    for (const ins of a.dockerfile.instructions) {
      if (ins.keyword === 'ENV' || ins.keyword === 'ARG') {
        const keys = ins.keyword === 'ENV' ? Object.keys(parseEnvInstruction(ins.args)) : [ins.args.split('=')[0] as string];
        for (const key of keys) {
          if (SECRET_VARS.includes(key) || /SECRET|TOKEN|PASSWORD|PRIVATE_KEY/.test(key)) problems.push(`Dockerfile line ${ins.line}: ${ins.keyword} ${key} would bake a secret into the image`);
        }
      }
      if ((ins.keyword === 'COPY' || ins.keyword === 'ADD') && /(^|\s|\/)\.env(\s|$)/.test(ins.args)) problems.push(`Dockerfile line ${ins.line}: copies .env into the image`);
    }
    for (const line of a.envExample.split('\n')) {
      const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (m && SECRET_VARS.includes(m[1] as string) && (m[2] as string).trim() !== '') problems.push(`.env.example: ${String(m[1])} must be left empty`);
    }
    return problems;
  },

  '.env.example lists exactly the variables the compose file reads, interpolated portably': (a) => {
    const problems: string[] = [];
    const used = new Set<string>();
    for (const { at, value } of stringsOf(a.compose)) {
      const { refs, invalid } = scanVars(value);
      for (const r of refs) {
        used.add(r.name);
        // podman-compose 1.0 leaves `${X:-}` and `${X:?}` uninterpolated, so the text would reach the container.
        if (r.op && !r.arg) problems.push(`${at}: \${${r.name}${r.op}} needs a non-empty default or message (podman-compose 1.0)`);
      }
      for (const bad of invalid) problems.push(`${at}: "${bad}…" is not valid interpolation (write $$ for a literal $)`);
    }
    const listed = new Set([...a.envExample.matchAll(/^#?[ \t]*([A-Za-z_][A-Za-z0-9_]*)=/gm)].map((m) => m[1] as string));
    for (const name of used) if (!listed.has(name)) problems.push(`.env.example does not list ${name}`);
    for (const name of listed) if (!used.has(name)) problems.push(`.env.example lists ${name}, which the compose file does not read`);
    return problems;
  },

  'auth trusts X-Forwarded-For from its network only, not from everyone': (a) => {
    const value = environmentOf(a.compose.services.auth ?? {}).TRUSTED_PROXIES;
    if (value === undefined) return ['auth: TRUSTED_PROXIES must be set, or every client shares the gateway address'];
    const list = withDefaults(value).split(',').map((s) => s.trim());
    const open = list.filter((p) => ['0.0.0.0/0', '::/0', '*', 'true'].includes(p) || /\/0$/.test(p));
    return [...(list.length === 0 || list[0] === '' ? ['auth: TRUSTED_PROXIES is empty'] : []), ...open.map((p) => `auth: TRUSTED_PROXIES trusts everyone (${p})`)];
  },

  '.dockerignore keeps host artefacts and secrets out of the build context': (a) => {
    const patterns = a.dockerignore
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    // Docker's matching: `**/` spans directories, `*` and `?` stay within one; a match on a
    // directory covers everything below it.
    const toRegExp = (pattern: string) => {
      const p = pattern.replace(/^\//, '');
      let re = '';
      for (let i = 0; i < p.length; i += 1) {
        if (p.startsWith('**/', i)) {
          re += '(?:.*/)?';
          i += 2;
        } else if (p.startsWith('**', i)) {
          re += '.*';
          i += 1;
        } else if (p[i] === '*') re += '[^/]*';
        else if (p[i] === '?') re += '[^/]';
        else re += (p[i] as string).replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return new RegExp(`^${re}(?:/.*)?$`);
    };
    const ignored = (file: string) => {
      let result = false;
      for (const p of patterns) {
        const negate = p.startsWith('!');
        if (toRegExp(negate ? p.slice(1) : p).test(file)) result = !negate;
      }
      return result;
    };
    const mustIgnore = ['.env', '.git/HEAD', 'node_modules/x', 'services/auth/node_modules/x', 'dist/x.js', 'services/auth/dist/server.js', 'packages/shared/.tap/x'];
    const mustKeep = ['pnpm-lock.yaml', 'pnpm-workspace.yaml', 'package.json', '.npmrc', 'services/auth/src/server.ts', 'checks/package.json'];
    return [
      ...mustIgnore.filter((f) => !ignored(f)).map((f) => `.dockerignore lets ${f} into the build context`),
      ...mustKeep.filter((f) => ignored(f)).map((f) => `.dockerignore drops ${f}, which the build needs`),
    ];
  },
};

// ---- Broken copies: each must trip its rule --------------------------------------------------------

type Breakage = { what: string; texts?: (t: Texts) => Texts; compose?: (c: Compose) => void };

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

const breakages: Record<string, Breakage[]> = {
  'every app service runs the entry point it is meant to, built from a real source file': [
    { what: 'a command naming a file that does not exist', compose: (c) => void (svc(c, 'sms-worker').command = ['node', 'dist/sms-wroker.js']) },
    { what: 'the gateway built from the auth target', compose: (c) => void (svc(c, 'gateway').build = { context: '.', target: 'auth' }) },
    { what: 'a shell-form CMD', texts: (t) => ({ ...t, dockerfile: swap(t.dockerfile, /CMD \["node", "dist\/sms-worker\.js"\]/, 'CMD node dist/sms-worker.js') }) },
  ],
  'the app services set only env variables the config knows (ENV_VARIABLES)': [
    { what: 'an env name the config does not read', compose: (c) => void (envMap(svc(c, 'auth')).REDIS_HOST = 'redis') },
  ],
  'compose defaults of config variables equal the schema defaults': [
    { what: 'a default that drifted from the schema', compose: (c) => void (envMap(svc(c, 'auth')).OTP_LENGTH = '${OTP_LENGTH:-4}') },
  ],
  'only the gateway publishes a port, and the one it listens on': [
    { what: 'redis published', compose: (c) => void (svc(c, 'redis').ports = ['6379:6379']) },
    { what: 'postgres published', compose: (c) => void (svc(c, 'postgres').ports = ['5432:5432']) },
    { what: 'the gateway published on a port it does not listen on', compose: (c) => void (svc(c, 'gateway').ports = ['8080:3000']) },
  ],
  'redis keeps its data (appendonly yes) and never evicts (noeviction)': [
    { what: 'an evicting redis', compose: (c) => void (svc(c, 'redis').command = 'redis-server --appendonly yes --maxmemory-policy allkeys-lru') },
    { what: 'redis without AOF', compose: (c) => void (svc(c, 'redis').command = ['redis-server', '--maxmemory-policy', 'noeviction']) },
  ],
  'every service restarts unless stopped and gets 10 s to shut down': [
    { what: 'no restart policy', compose: (c) => void delete svc(c, 'postgres').restart },
    { what: 'the default 10 s replaced', compose: (c) => void (svc(c, 'sms-worker').stop_grace_period = '1s') },
  ],
  'every service has a CMD-SHELL healthcheck': [
    { what: 'no healthcheck', compose: (c) => void delete svc(c, 'sms-worker').healthcheck },
    { what: 'a CMD array healthcheck', compose: (c) => void (svc(c, 'postgres').healthcheck = { test: ['CMD', 'pg_isready'] }) },
  ],
  'depends_on waits for healthy services, without cycles': [
    { what: 'a short-form depends_on', compose: (c) => void (svc(c, 'gateway').depends_on = ['auth', 'referral']) },
    { what: 'service_started', compose: (c) => void (svc(c, 'referral').depends_on = { postgres: { condition: 'service_started' }, redis: { condition: 'service_healthy' } }) },
    { what: 'a cycle', compose: (c) => void (svc(c, 'redis').depends_on = { gateway: { condition: 'service_healthy' } }) },
  ],
  'service URLs point at compose services, on the ports they listen on': [
    { what: 'a wrong upstream port', compose: (c) => void (envMap(svc(c, 'referral')).AUTH_URL = 'http://auth:3000') },
    { what: 'a store the service does not wait for', compose: (c) => void (svc(c, 'referral').depends_on = { redis: { condition: 'service_healthy' } }) },
  ],
  'the runtime images run as a non-root user, in production mode, on all interfaces': [
    { what: 'USER root', texts: (t) => ({ ...t, dockerfile: swap(t.dockerfile, /^USER node$/m, 'USER root') }) },
    { what: 'no USER at all', texts: (t) => ({ ...t, dockerfile: swap(t.dockerfile, /^USER node$/m, '') }) },
    { what: 'compose overriding the user', compose: (c) => void (svc(c, 'gateway').user = '0:0') },
  ],
  'secrets come only from ${VAR:?...} interpolation, and only where needed': [
    { what: 'a literal secret', compose: (c) => void (envMap(svc(c, 'auth')).INTERNAL_TOKEN = 'f'.repeat(64)) },
    { what: 'a secret with a default', compose: (c) => void (envMap(svc(c, 'auth')).OTP_HMAC_SECRET = '${OTP_HMAC_SECRET:-changeme-changeme-changeme-changeme}') },
    { what: 'a secret handed to the gateway', compose: (c) => void (envMap(svc(c, 'gateway')).INTERNAL_TOKEN = '${INTERNAL_TOKEN:?set it}') },
    { what: 'a secret the server requires left out', compose: (c) => void delete envMap(svc(c, 'auth')).JWT_PRIVATE_KEY },
    { what: 'a literal database password', compose: (c) => void (envMap(svc(c, 'referral')).DATABASE_URL = 'postgres://referral:hunter2@postgres:5432/referral') },
    { what: 'a secret in the Dockerfile', texts: (t) => ({ ...t, dockerfile: swap(t.dockerfile, /^USER node$/m, 'USER node\nENV OTP_HMAC_SECRET=abc') }) },
    { what: 'a filled-in .env.example', texts: (t) => ({ ...t, envExample: swap(t.envExample, /^INTERNAL_TOKEN=$/m, 'INTERNAL_TOKEN=0123456789abcdef0123456789abcdef') }) },
  ],
  '.env.example lists exactly the variables the compose file reads, interpolated portably': [
    { what: 'a variable missing from .env.example', texts: (t) => ({ ...t, envExample: swap(t.envExample, /^.*GATEWAY_PORT=.*$/m, '') }) },
    { what: 'a stale variable in .env.example', texts: (t) => ({ ...t, envExample: `${t.envExample}\n# NO_LONGER_USED=1\n` }) },
    { what: 'an empty default', compose: (c) => void (envMap(svc(c, 'gateway')).LOG_LEVEL = '${LOG_LEVEL:-}') },
    { what: 'an unescaped $ in a command', compose: (c) => void (svc(c, 'redis').healthcheck = { test: ['CMD-SHELL', 'redis-cli ping | grep -q "$(echo PONG)"'] }) },
  ],
  'auth trusts X-Forwarded-For from its network only, not from everyone': [
    { what: 'trust everyone', compose: (c) => void (envMap(svc(c, 'auth')).TRUSTED_PROXIES = '0.0.0.0/0') },
    { what: 'not set', compose: (c) => void delete envMap(svc(c, 'auth')).TRUSTED_PROXIES },
  ],
  '.dockerignore keeps host artefacts and secrets out of the build context': [
    { what: '.env not ignored', texts: (t) => ({ ...t, dockerignore: swap(t.dockerignore, /^\.env$/m, '') }) },
    { what: 'node_modules re-included', texts: (t) => ({ ...t, dockerignore: `${t.dockerignore}\n!services/auth/node_modules\n` }) },
    { what: 'the lockfile ignored', texts: (t) => ({ ...t, dockerignore: `${t.dockerignore}\n*.yaml\n` }) },
  ],
};

// ---- Tests ----------------------------------------------------------------------------------------

const real = parseArtefacts(TEXTS);

t.test('the compose file interpolates with every required variable set', async (t) => {
  const vars = Object.fromEntries(SECRET_VARS.map((name) => [name, 'x']));
  t.doesNotThrow(() => stringsOf(real.compose).forEach(({ value }) => interpolate(value, vars)));
  t.throws(() => stringsOf(real.compose).forEach(({ value }) => interpolate(value, {})), /required variable/, 'and refuses without secrets');
  t.same(Object.keys(real.compose.services).sort(), ['auth', 'gateway', 'postgres', 'redis', 'referral', 'sms-worker']);
});

for (const [name, rule] of Object.entries(rules)) {
  t.test(name, async (t) => {
    t.same(rule(real, workspace), [], 'the real artefacts pass');
    const broken = breakages[name] ?? [];
    t.ok(broken.length > 0, 'the rule has at least one broken copy to catch');
    for (const breakage of broken) {
      const texts = breakage.texts ? breakage.texts(TEXTS) : TEXTS;
      const artefacts = parseArtefacts(texts);
      breakage.compose?.(artefacts.compose);
      const problems = rule(artefacts, workspace);
      t.ok(problems.length > 0, `catches ${breakage.what}`, { problems });
    }
  });
}

// ---- The healthcheck commands, run for real against stand-in servers -------------------------------

interface RunResult {
  code: number | null;
  stderr: string;
}

/** Runs a CMD-SHELL healthcheck as the container would: after compose interpolation, under sh, in a "type": "module" dir. */
function runHealthcheck(command: string, env: Record<string, string>, cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', interpolate(command, {})], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

t.test('the healthcheck commands work', async (t) => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'refstack-healthcheck-'));
  writeFileSync(path.join(cwd, 'package.json'), '{"type": "module"}\n');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const commandOf = (name: string) => String((real.compose.services[name]?.healthcheck?.test as string[] | undefined)?.[1] ?? 'exit 99');

  for (const [name, app] of Object.entries(APP_SERVICES)) {
    const portVar = app.portVar;
    if (!portVar) continue;
    await t.test(`${name}: /health/ready on ${portVar}`, async (t) => {
      let status = 200;
      const paths: string[] = [];
      const server = createHttpServer((req, res) => {
        paths.push(req.url ?? '');
        res.writeHead(req.url === '/health/ready' ? status : 404).end('{}');
      });
      const port = await listen(server);
      const env = { [portVar]: String(port) };
      t.match(await runHealthcheck(commandOf(name), env, cwd), { code: 0 }, 'healthy when ready answers 200');
      status = 503;
      t.match(await runHealthcheck(commandOf(name), env, cwd), { code: 1 }, 'unhealthy when ready answers 503');
      t.ok(paths.length >= 2 && paths.every((p) => p === '/health/ready'), 'asks /health/ready');
      await close(server);
      t.match(await runHealthcheck(commandOf(name), env, cwd), { code: 1 }, 'unhealthy when nothing listens');
    });
  }

  await t.test('sms-worker: Redis answers PING at REDIS_URL', async (t) => {
    let reply = '+PONG\r\n';
    const server = createTcpServer((socket) => {
      socket.on('data', (d) => {
        if (String(d).startsWith('PING')) socket.end(reply);
      });
    });
    const port = await listen(server);
    const env = { REDIS_URL: `redis://127.0.0.1:${port}` };
    t.match(await runHealthcheck(commandOf('sms-worker'), env, cwd), { code: 0 }, 'healthy on +PONG');
    reply = '-LOADING Redis is loading the dataset in memory\r\n';
    t.match(await runHealthcheck(commandOf('sms-worker'), env, cwd), { code: 1 }, 'unhealthy on an error reply');
    await close(server);
    t.match(await runHealthcheck(commandOf('sms-worker'), env, cwd), { code: 1 }, 'unhealthy when nothing listens');
  });
});
