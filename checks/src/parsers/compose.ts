import { parse as parseYaml } from 'yaml';

export interface ComposeService {
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
export interface Compose {
  services: Record<string, ComposeService>;
  [key: string]: unknown;
}

// The anchors and `<<:` merge keys of the compose file only resolve with YAML 1.1 merging on.
export const parseCompose = (text: string): Compose => parseYaml(text, { merge: true }) as Compose;

// ---- Variable interpolation ---------------------------------------------------------------------

export interface VarRef {
  name: string;
  /** `-`, `:-`, `?`, `:?`, `+`, `:+`, or '' for a bare `$NAME` / `${NAME}`. */
  op: string;
  arg: string;
}

/** Splits a compose string into literal text and `$` references, as compose does; `$$` is a literal `$`. */
export function scanVars(value: string): { refs: VarRef[]; invalid: string[] } {
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
export function interpolate(value: string, vars: Record<string, string | undefined>): string {
  const re = /\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\})/g;
  const replace = (
    _all: string,
    dollar: string | undefined,
    bare: string | undefined,
    name: string | undefined,
    op: string | undefined,
    arg: string | undefined,
  ): string => {
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
  };
  return value.replace(re, replace);
}

/** An env value as the container would see it with only the compose defaults in play. */
export function withDefaults(value: string): string {
  return interpolate(value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*):?\?[^}]*\}/g, 'SECRET'), {});
}

// ---- Reading services -----------------------------------------------------------------------------

export function environmentOf(service: ComposeService): Record<string, string> {
  const env = service.environment;
  if (!env) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((item) => {
        const eq = item.indexOf('=');
        return eq < 0 ? [item, ''] : [item.slice(0, eq), item.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Every string value anywhere in the compose file (keys cannot be interpolated, so they are left out). */
export function stringsOf(node: unknown, at = ''): { at: string; value: string }[] {
  if (typeof node === 'string') return [{ at, value: node }];
  if (Array.isArray(node)) return node.flatMap((item, i) => stringsOf(item, `${at}[${i}]`));
  if (node && typeof node === 'object') {
    return Object.entries(node).flatMap(([k, v]) => stringsOf(v, at ? `${at}.${k}` : k));
  }
  return [];
}

export function commandWords(command: string | string[] | undefined): string[] | undefined {
  if (command === undefined) return undefined;
  return Array.isArray(command) ? command.map(String) : command.trim().split(/\s+/);
}

/** The Dockerfile stage a service is built from, when it names one. */
export function targetOf(service: ComposeService): string | undefined {
  return typeof service.build === 'object' ? service.build.target : undefined;
}
