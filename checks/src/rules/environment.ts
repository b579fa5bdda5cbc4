/** The app services' environment held against the config schema. */
import { ENV_VARIABLES, PROCESSES } from '@refstack/shared/contracts';
import { environmentOf, scanVars, stringsOf, targetOf } from '../parsers/compose.js';
import { stageState } from '../parsers/dockerfile.js';
import { schemaDefault } from './expected.js';
import type { Rule } from './rule.js';

export const environmentRules = {
  // loadConfig ignores variables it does not know, so a misspelt one would silently not apply.
  'the app services set only env variables the config knows (ENV_VARIABLES)': (a) => {
    const known = new Set(ENV_VARIABLES);
    const problems: string[] = [];
    for (const { name } of PROCESSES) {
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
        .refs.filter((r) => {
          const fallback = schemaDefault(r.name);
          return r.op.endsWith('-') && fallback !== undefined && String(fallback) !== r.arg;
        })
        .map((r) => `${at}: \${${r.name}${r.op}${r.arg}} but the config default is ${String(schemaDefault(r.name))}`),
    ),
} satisfies Record<string, Rule>;
