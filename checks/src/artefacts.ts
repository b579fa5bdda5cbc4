import { parseCompose, type Compose } from './parsers/compose.js';
import { parseDockerfile, type Dockerfile } from './parsers/dockerfile.js';
import { parseDockerignore, type Dockerignore } from './parsers/dockerignore.js';
import { parseEnvFile, type EnvFile } from './parsers/env-file.js';
import { readRepoFile } from './parsers/workspace.js';

/** The artefacts as text: what a broken copy edits before it is parsed. */
export interface Texts {
  compose: string;
  dockerfile: string;
  envExample: string;
  dockerignore: string;
}
export interface Artefacts {
  compose: Compose;
  dockerfile: Dockerfile;
  envExample: EnvFile;
  dockerignore: Dockerignore;
}

export const readTexts = (): Texts => ({
  compose: readRepoFile('docker-compose.yml'),
  dockerfile: readRepoFile('Dockerfile'),
  envExample: readRepoFile('.env.example'),
  dockerignore: readRepoFile('.dockerignore'),
});

export const parseArtefacts = (texts: Texts): Artefacts => ({
  compose: parseCompose(texts.compose),
  dockerfile: parseDockerfile(texts.dockerfile),
  envExample: parseEnvFile(texts.envExample),
  dockerignore: parseDockerignore(texts.dockerignore),
});
