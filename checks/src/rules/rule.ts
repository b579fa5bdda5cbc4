import type { Artefacts } from '../artefacts.js';
import type { Workspace } from '../parsers/workspace.js';

/** A check of the parsed artefacts: the problems it finds, none when they are right. */
export type Rule = (a: Artefacts, ws: Workspace) => string[];
