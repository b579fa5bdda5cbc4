/** The app services' environment held against the config schema. */
import { ENV_VARIABLES, PROCESSES } from '@refstack/shared/contracts';
import { environmentOf, scanVars, stringsOf, targetOf } from '../parsers/compose.js';
import { stageState } from '../parsers/dockerfile.js';
import { schemaDefault } from './expected.js';
import { OPERATOR_NAME, READERS, TOGETHER, WIRING, type Readers } from './readers.js';
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

  // loadConfig cannot tell a variable compose never passed from one the operator left unset, so a
  // setting missing here is silently the default in the containers whatever .env says.
  'every variable a process reads reaches it from .env or the shell': (a) => {
    const problems: string[] = [];
    const readers = READERS as Readonly<Record<string, Readers | undefined>>;
    const operatorNames = OPERATOR_NAME as Readonly<Record<string, string | undefined>>;
    for (const name of ENV_VARIABLES) {
      const entry = readers[name];
      if (entry === undefined) {
        problems.push(`${name}: a config variable missing from READERS (checks/src/rules/readers.ts)`);
        continue;
      }
      if (entry === WIRING) continue;
      const source = operatorNames[name] ?? name;
      for (const process of entry) {
        const value = environmentOf(a.compose.services[process] ?? {})[name];
        if (value === undefined) problems.push(`${process}: reads ${name}, which compose does not pass`);
        else if (!scanVars(value).refs.some((r) => r.name === source)) {
          problems.push(`${process}: ${name} is fixed at ${JSON.stringify(value)}; take it from \${${source}...}`);
        }
      }
    }
    for (const { name: process } of PROCESSES) {
      const env = environmentOf(a.compose.services[process] ?? {});
      for (const group of TOGETHER) {
        const given = group.filter((name) => name in env);
        if (given.length > 0 && given.length < group.length) {
          problems.push(`${process}: gets ${given.join(', ')} without ${group.filter((n) => !(n in env)).join(', ')}`);
        }
      }
    }
    return problems;
  },
} satisfies Record<string, Rule>;
