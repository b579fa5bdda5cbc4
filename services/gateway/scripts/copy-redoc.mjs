// Part of `pnpm build`: copies ReDoc's standalone bundle (self-contained) into dist/assets, so the
// gateway's image serves it without the redoc package and the React tree it depends on.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const bundle = require.resolve('redoc/bundles/redoc.standalone.js');
const target = new URL('../dist/assets/', import.meta.url);
mkdirSync(target, { recursive: true });
for (const file of [bundle, `${bundle}.LICENSE.txt`]) {
  copyFileSync(file, new URL(file.slice(file.lastIndexOf('/') + 1), target));
}
