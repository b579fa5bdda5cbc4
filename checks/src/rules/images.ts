/** The Dockerfile's stages: what each service's image runs, and as whom. */
import path from 'node:path';
import { PROCESSES } from '@refstack/shared/contracts';
import type { Artefacts } from '../artefacts.js';
import { commandWords, targetOf, type ComposeService } from '../parsers/compose.js';
import { deploysOf, stageState } from '../parsers/dockerfile.js';
import { buildDirs, type Workspace } from '../parsers/workspace.js';
import type { Rule } from './rule.js';

/** Which source file in the repository a compose service ends up running. */
function resolveEntry(
  a: Artefacts,
  ws: Workspace,
  name: string,
  service: ComposeService,
): { source?: string; problems: string[] } {
  const problems: string[] = [];
  const target = targetOf(service);
  if (!target) return { problems: [`${name}: build.target must name a Dockerfile stage`] };
  if (!a.dockerfile.stages.some((s) => s.name === target)) {
    return { problems: [`${name}: Dockerfile has no stage "${target}"`] };
  }
  const state = stageState(a.dockerfile, target);
  const words = commandWords(service.command) ?? state.cmd;
  if (!words) {
    return {
      problems: [
        `${name}: stage ${target} needs an exec-form CMD ` +
          '(a shell-form CMD makes sh PID 1, which does not pass SIGTERM on)',
      ],
    };
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
  if (!deployDir) {
    return { problems: [`${name}: ${fromBuild} (stage ${copy.from}) is not inside any \`pnpm deploy\` output`] };
  }
  const pkg = deploys.get(deployDir) as string;
  const dir = ws.packages.get(pkg);
  if (!dir) return { problems: [`${name}: \`pnpm deploy --filter ${pkg}\` names no workspace package`] };

  // The runtime needs the package's manifest ("type": "module") and its production node_modules too.
  for (const needed of ['package.json', 'node_modules']) {
    const dest = path.posix.join(state.workdir, needed);
    const ok = state.copies.some(
      (c) =>
        c.from === copy.from && c.sources.length === 1 && c.sources[0] === `${deployDir}/${needed}` && c.dest === dest,
    );
    if (!ok) problems.push(`${name}: stage ${target} must copy ${deployDir}/${needed} to ${dest}`);
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

const isRoot = (user: string | undefined): boolean => user === undefined || /^(root|0)(:.*)?$/.test(user.trim());

export const imageRules = {
  'every app service runs the entry point it is meant to, built from a real source file': (a, ws) =>
    PROCESSES.flatMap((spec) => {
      const service = a.compose.services[spec.name];
      if (!service) return [`service ${spec.name} is missing`];
      const { source, problems } = resolveEntry(a, ws, spec.name, service);
      const want = `${ws.packages.get(spec.pkg) ?? spec.pkg}/${spec.source}`;
      if (source && source !== want) problems.push(`${spec.name}: runs ${source}, expected ${want}`);
      return problems;
    }),

  'the runtime images run as a non-root user, in production mode, on all interfaces': (a) =>
    Object.entries(a.compose.services).flatMap(([name, service]) => {
      const problems: string[] = [];
      if (service.user !== undefined && isRoot(String(service.user))) {
        problems.push(`${name}: user: ${service.user} runs as root`);
      }
      const target = targetOf(service);
      if (!target || !a.dockerfile.stages.some((s) => s.name === target)) return problems;
      const state = stageState(a.dockerfile, target);
      if (service.user === undefined && isRoot(state.user)) {
        problems.push(`${name}: stage ${target} runs as root (no USER, or USER root)`);
      }
      if (state.env.NODE_ENV !== 'production') problems.push(`${name}: stage ${target} must set NODE_ENV=production`);
      if (state.env.HOST !== '0.0.0.0') problems.push(`${name}: stage ${target} must set HOST=0.0.0.0`);
      // The operations ports default to loopback, where a scraper on the compose network cannot reach them.
      if (state.env.OPS_HOST !== '0.0.0.0') problems.push(`${name}: stage ${target} must set OPS_HOST=0.0.0.0`);
      return problems;
    }),
} satisfies Record<string, Rule>;
