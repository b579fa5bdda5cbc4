/** Where secrets may come from: the operator's environment at start, never a file or an image. */
import type { Artefacts } from '../artefacts.js';
import { environmentOf, stringsOf } from '../parsers/compose.js';
import { parseEnvInstruction } from '../parsers/dockerfile.js';
import { APP_SECRETS, appProcess, DEV_SECRET_VALUES, SECRET_VARS } from './expected.js';
import type { Rule } from './rule.js';

function composeProblems(a: Artefacts): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(a.compose.services)) {
    const env = environmentOf(service);
    for (const [key, value] of Object.entries(env)) {
      if (!SECRET_VARS.includes(key)) continue;
      const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$/.exec(value);
      if (!m) {
        problems.push(
          `${name}: ${key} must be exactly \${${key}:?<message>} (required, no default), ` +
            `got ${JSON.stringify(value.slice(0, 40))}`,
        );
      } else if (m[1] !== key) problems.push(`${name}: ${key} is taken from \${${String(m[1])}}`);
    }
    const spec = appProcess(name);
    if (spec) {
      for (const secret of spec.secrets) {
        if (!(secret in env)) problems.push(`${name}: its server requires ${secret}, compose does not pass it`);
      }
      for (const secret of APP_SECRETS) {
        if (secret in env && !spec.secrets.includes(secret)) {
          problems.push(`${name}: gets ${secret} without needing it`);
        }
      }
    }
    if (env.DATABASE_URL !== undefined) {
      const password = /^postgres(?:ql)?:\/\/[^:@/]+:([^@]*)@/.exec(env.DATABASE_URL)?.[1];
      if (password !== undefined && !/^\$\{POSTGRES_PASSWORD:\?[^}]+\}$/.test(password)) {
        problems.push(`${name}: the DATABASE_URL password must be \${POSTGRES_PASSWORD:?...}`);
      }
    }
  }
  return problems;
}

function writtenDownProblems(a: Artefacts): string[] {
  const problems: string[] = [];
  const everything = [
    ...stringsOf(a.compose).map((s) => s.value),
    a.dockerfile.instructions.map((i) => i.args).join('\n'),
  ];
  for (const text of everything) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
      problems.push('a PEM private key is written into the compose file or Dockerfile');
    }
    for (const dev of DEV_SECRET_VALUES) {
      if (text.includes(dev)) {
        problems.push(`a development secret (${dev}) is written into the compose file or Dockerfile`);
      }
    }
  }
  return problems;
}

function dockerfileProblems(a: Artefacts): string[] {
  const problems: string[] = [];
  for (const ins of a.dockerfile.instructions) {
    if (ins.keyword === 'ENV' || ins.keyword === 'ARG') {
      const keys =
        ins.keyword === 'ENV' ? Object.keys(parseEnvInstruction(ins.args)) : [ins.args.split('=')[0] as string];
      for (const key of keys) {
        if (SECRET_VARS.includes(key) || /SECRET|TOKEN|PASSWORD|PRIVATE_KEY/.test(key)) {
          problems.push(`Dockerfile line ${ins.line}: ${ins.keyword} ${key} would bake a secret into the image`);
        }
      }
    }
    if ((ins.keyword === 'COPY' || ins.keyword === 'ADD') && /(^|\s|\/)\.env(\s|$)/.test(ins.args)) {
      problems.push(`Dockerfile line ${ins.line}: copies .env into the image`);
    }
  }
  return problems;
}

function envExampleProblems(a: Artefacts): string[] {
  return a.envExample.entries
    .filter((e) => !e.commented && SECRET_VARS.includes(e.name) && e.value.trim() !== '')
    .map((e) => `.env.example: ${e.name} must be left empty`);
}

export const secretRules = {
  'secrets come only from ${VAR:?...} interpolation, and only where needed': (a) => [
    ...composeProblems(a),
    ...writtenDownProblems(a),
    ...dockerfileProblems(a),
    ...envExampleProblems(a),
  ],
} satisfies Record<string, Rule>;
