import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '@refstack/shared/contracts';

/** Where the ReDoc page reads the merged document (the same as /docs/json). */
export const SCHEMA_PATH = '/api/v1/schema/';
export const REDOC_PAGES = ['/api/v1/redoc', '/redoc'] as const;
const ASSETS = '/redoc/';

const require = createRequire(import.meta.url);
const gzipAsync = promisify(gzip);

/**
 * The page loads nothing but its own origin: scripts are files (no inline script), the spec is
 * fetched from here, search runs in a worker ReDoc makes from a blob, and styled-components
 * writes its styles inline.
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  'worker-src blob:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join(';');

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Refstack API</title>
    <link rel="icon" href="data:,">
    <style>body { margin: 0; }</style>
  </head>
  <body>
    <div id="redoc"></div>
    <script src="${ASSETS}redoc.standalone.js"></script>
    <script src="${ASSETS}init.js"></script>
  </body>
</html>
`;

// ReDoc's default fonts (Montserrat, Roboto) would have to come from Google; the system's own
// fonts need nothing from anywhere.
const INIT = `Redoc.init(${JSON.stringify(SCHEMA_PATH)}, {
  expandResponses: '200',
  theme: {
    typography: {
      fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      headings: { fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif' },
      code: { fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace' },
    },
  },
}, document.getElementById('redoc'));
`;

// The sidebar's "API docs by Redocly" link shows a logo from Redocly's CDN, whatever the options
// say. An empty image in its place keeps the page from reaching out (the CSP would block it too,
// but the attempt would still be made).
const OUTSIDE_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';
const EMPTY_SVG = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E";

interface Asset {
  type: string;
  body: Buffer;
  gzipped?: Buffer;
  etag: string;
  /** Seconds a browser may keep it without asking again. */
  maxAge: number;
}

async function asset(type: string, body: Buffer, maxAge: number, compress: boolean): Promise<Asset> {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { type, body, etag, maxAge, gzipped: compress ? await gzipAsync(body, { level: 9 }) : undefined };
}

/**
 * The copy `pnpm build` puts in dist/assets (the image has no dev dependencies), or, when running
 * from source unbuilt, the redoc package itself: the same file either way.
 */
function bundleFile(): string {
  const built = fileURLToPath(new URL('../dist/assets/redoc.standalone.js', import.meta.url));
  return existsSync(built) ? built : require.resolve('redoc/bundles/redoc.standalone.js');
}

// A Map, not an object: a file named `constructor` or `__proto__` must find nothing, not one of
// Object.prototype's members.
async function loadBundle(): Promise<Map<string, Asset>> {
  const bundlePath = bundleFile();
  const [bundle, license] = await Promise.all([readFile(bundlePath, 'utf8'), readFile(`${bundlePath}.LICENSE.txt`)]);
  const script = bundle.replaceAll(OUTSIDE_LOGO, EMPTY_SVG).replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  // The bundle changes only with the redoc version, so a browser keeps it for a day and then
  // revalidates with its ETag.
  const day = 86_400;
  return new Map([
    ['redoc.standalone.js', await asset('text/javascript; charset=utf-8', Buffer.from(script), day, true)],
    ['redoc.standalone.js.LICENSE.txt', await asset('text/plain; charset=utf-8', license, day, false)],
    ['init.js', await asset('text/javascript; charset=utf-8', Buffer.from(INIT), 300, false)],
  ]);
}

function send(request: FastifyRequest, reply: FastifyReply, file: Asset): FastifyReply {
  void reply
    .header('cache-control', `public, max-age=${file.maxAge}`)
    .header('etag', file.etag)
    .header('vary', 'accept-encoding');
  const cached = request.headers['if-none-match'];
  if (cached && cached.split(',').some((tag) => tag.trim().replace(/^W\//, '') === file.etag)) {
    return reply.code(304).send();
  }
  void reply.type(file.type);
  const accepts = request.headers['accept-encoding'] ?? '';
  if (file.gzipped && /\bgzip\b/.test(accepts)) {
    return reply.header('content-encoding', 'gzip').send(file.gzipped);
  }
  return reply.send(file.body);
}

/**
 * `GET /api/v1/redoc` and `GET /redoc`: ReDoc over the merged document, with ReDoc's script served
 * from the gateway's own copy of the `redoc` package.
 */
export function registerRedoc(app: FastifyInstance): void {
  // Read and compressed on first use: a gateway whose docs nobody opens never pays for it.
  let assets: Promise<Map<string, Asset>> | undefined;
  const page = asset('text/html; charset=utf-8', Buffer.from(PAGE), 300, false);

  for (const url of REDOC_PAGES) {
    app.get(url, async (request, reply) => {
      void reply.header('content-security-policy', PAGE_CSP);
      return send(request, reply, await page);
    });
  }
  app.get<{ Params: { file: string } }>(`${ASSETS}:file`, async (request, reply) => {
    assets ??= loadBundle().catch((error: unknown) => {
      assets = undefined;
      throw error;
    });
    const file = (await assets).get(request.params.file);
    if (!file) throw new AppError('not_found', 'No such resource.');
    return send(request, reply, file);
  });
}
