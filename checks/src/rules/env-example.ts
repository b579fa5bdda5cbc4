/** .env.example, the operator's list of what to set. */
import { scanVars, stringsOf } from '../parsers/compose.js';
import type { Rule } from './rule.js';

export const envExampleRules = {
  '.env.example lists exactly the variables the compose file reads, interpolated portably': (a) => {
    const problems: string[] = [];
    const used = new Set<string>();
    for (const { at, value } of stringsOf(a.compose)) {
      const { refs, invalid } = scanVars(value);
      for (const r of refs) {
        used.add(r.name);
        // podman-compose 1.0 leaves `${X:-}` and `${X:?}` uninterpolated, so the text would reach the container.
        if (r.op && !r.arg) {
          problems.push(`${at}: \${${r.name}${r.op}} needs a non-empty default or message (podman-compose 1.0)`);
        }
      }
      for (const bad of invalid) {
        problems.push(`${at}: "${bad}…" is not valid interpolation (write $$ for a literal $)`);
      }
    }
    const listed = new Set(a.envExample.entries.map((e) => e.name));
    for (const name of used) if (!listed.has(name)) problems.push(`.env.example does not list ${name}`);
    for (const name of listed) {
      if (!used.has(name)) problems.push(`.env.example lists ${name}, which the compose file does not read`);
    }
    return problems;
  },
} satisfies Record<string, Rule>;
