import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

/** The repository root (this file is checks/src/parsers/workspace.ts). */
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export const readRepoFile = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

export interface Workspace {
  /** Package name → directory relative to the root. */
  packages: Map<string, string>;
  exists(file: string): boolean;
  read(file: string): string;
}

export function loadWorkspace(): Workspace {
  const globs = (parseYaml(readRepoFile('pnpm-workspace.yaml')) as { packages?: string[] }).packages ?? [];
  const dirs = globs.flatMap((glob) => {
    if (!glob.endsWith('/*')) return [glob];
    const parent = glob.slice(0, -2);
    if (!existsSync(path.join(ROOT, parent))) return [];
    return readdirSync(path.join(ROOT, parent), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `${parent}/${d.name}`);
  });
  const packages = new Map<string, string>();
  for (const dir of dirs) {
    const manifest = path.join(ROOT, dir, 'package.json');
    if (existsSync(manifest)) packages.set((JSON.parse(readFileSync(manifest, 'utf8')) as { name: string }).name, dir);
  }
  return { packages, exists: (file) => existsSync(path.join(ROOT, file)), read: readRepoFile };
}

/** rootDir and outDir of a package's build (tsconfig.json; tsc's usual src/dist otherwise). */
export function buildDirs(ws: Workspace, dir: string): { rootDir: string; outDir: string } {
  let options: { rootDir?: string; outDir?: string } = {};
  try {
    const tsconfig = JSON.parse(ws.read(`${dir}/tsconfig.json`)) as { compilerOptions?: typeof options };
    options = tsconfig.compilerOptions ?? {};
  } catch {
    // No tsconfig or one with comments: fall back to the convention.
  }
  const clean = (p: string) => path.posix.normalize(p).replace(/^\.\//, '').replace(/\/$/, '');
  return { rootDir: clean(options.rootDir ?? 'src'), outDir: clean(options.outDir ?? 'dist') };
}
