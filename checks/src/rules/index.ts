import { buildContextRules } from './build-context.js';
import { envExampleRules } from './env-example.js';
import { environmentRules } from './environment.js';
import { imageRules } from './images.js';
import { networkRules } from './network.js';
import type { Rule } from './rule.js';
import { secretRules } from './secrets.js';
import { serviceRules } from './services.js';

export type { Rule } from './rule.js';

/** Every rule by its name; the names are the test titles, so they are spelled for people. */
export const rules = {
  ...imageRules,
  ...environmentRules,
  ...networkRules,
  ...serviceRules,
  ...secretRules,
  ...envExampleRules,
  ...buildContextRules,
} satisfies Record<string, Rule>;

export type RuleName = keyof typeof rules;
