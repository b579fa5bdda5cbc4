/**
 * Checks the container artefacts (Dockerfile, docker-compose.yml, .env.example, .dockerignore)
 * without a container engine: they are parsed (src/parsers) and held against the repository and
 * the contracts of @refstack/shared by the rules (src/rules).
 *
 * The real files must give no problem, and every rule is also run against the deliberately broken
 * copies in breakages.ts, each of which must give at least one.
 */
import t from 'tap';
import { parseArtefacts, readTexts } from '../src/artefacts.js';
import { interpolate, stringsOf } from '../src/parsers/compose.js';
import { loadWorkspace } from '../src/parsers/workspace.js';
import { SECRET_VARS } from '../src/rules/expected.js';
import { rules, type RuleName } from '../src/rules/index.js';
import { breakages } from './breakages.js';

const TEXTS = readTexts();
const real = parseArtefacts(TEXTS);
const workspace = loadWorkspace();

t.test('the compose file interpolates with every required variable set', async (t) => {
  const vars = Object.fromEntries(SECRET_VARS.map((name) => [name, 'x']));
  t.doesNotThrow(() => stringsOf(real.compose).forEach(({ value }) => interpolate(value, vars)));
  t.throws(
    () => stringsOf(real.compose).forEach(({ value }) => interpolate(value, {})),
    /required variable/,
    'and refuses without secrets',
  );
  t.same(Object.keys(real.compose.services).sort(), ['auth', 'gateway', 'postgres', 'redis', 'referral', 'sms-worker']);
});

for (const [name, rule] of Object.entries(rules)) {
  t.test(name, async (t) => {
    t.same(rule(real, workspace), [], 'the real artefacts pass');
    const broken = breakages[name as RuleName];
    t.ok(broken.length > 0, 'the rule has at least one broken copy to catch');
    for (const breakage of broken) {
      const artefacts = parseArtefacts(breakage.texts ? breakage.texts(TEXTS) : TEXTS);
      breakage.compose?.(artefacts.compose);
      const problems = rule(artefacts, workspace);
      t.ok(problems.length > 0, `catches ${breakage.what}`, { problems });
    }
  });
}
