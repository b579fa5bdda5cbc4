import path from 'node:path';

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
export interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}
export interface Copy {
  from: string | undefined;
  sources: string[];
  /** Absolute destination inside the image. */
  dest: string;
}
export interface StageState {
  workdir: string;
  user: string | undefined;
  /** Exec form only; `shellCmd` holds a shell-form CMD. */
  cmd: string[] | undefined;
  shellCmd: string | undefined;
  env: Record<string, string>;
  copies: Copy[];
  /** The first stage of the chain that is an image, not another stage. */
  image: string;
}
export interface Dockerfile {
  args: Record<string, string>;
  stages: Stage[];
  instructions: Instruction[];
}

export function parseDockerfile(text: string): Dockerfile {
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
      const base = (words[0] ?? '').replace(
        /\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g,
        (_all, name: string) => args[name] ?? '',
      );
      const name = words[1]?.toUpperCase() === 'AS' ? (words[2] ?? '') : String(stages.length);
      stages.push({ name, base, instructions: [] });
    } else if (stages.length === 0) {
      // Only an ARG before the first FROM can be used in a FROM line.
      if (ins.keyword === 'ARG') {
        const [key, ...rest] = ins.args.split('=');
        args[(key as string).trim()] = rest
          .join('=')
          .trim()
          .replace(/^"(.*)"$/, '$1');
      }
    } else {
      (stages[stages.length - 1] as Stage).instructions.push(ins);
    }
  }
  return { args, stages, instructions };
}

/** Both forms of ENV: the legacy `ENV KEY value` and `ENV KEY=value KEY2="value 2"`. */
export function parseEnvInstruction(args: string): Record<string, string> {
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

/** What a stage ends up with once the stages it is built `FROM` are applied first. */
export function stageState(dockerfile: Dockerfile, name: string, seen: string[] = []): StageState {
  const stage = dockerfile.stages.find((s) => s.name === name);
  if (!stage) throw new Error(`no stage named ${name}`);
  if (seen.includes(name)) throw new Error(`stage cycle through ${name}`);
  const parent = dockerfile.stages.some((s) => s.name === stage.base)
    ? stageState(dockerfile, stage.base, [...seen, name])
    : undefined;
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
export function deploysOf(dockerfile: Dockerfile, stageName: string): Map<string, string> {
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
