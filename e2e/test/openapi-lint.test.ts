import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO_ROOT, TestStack } from '@refstack/shared/testing';
import { LEGACY_ROUTES, SECOND_SEED_PATHS } from '../../services/gateway/src/routes.js';

// The CLI from node_modules, never `npx`, which could go looking for it on a registry.
const CLI = join(dirname(createRequire(import.meta.url).resolve('@redocly/cli/package.json')), 'bin/cli.js');
const CONFIG = join(REPO_ROOT, 'redocly.yaml');

interface LintProblem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
  location?: Array<{ pointer?: string }>;
}

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: LintProblem[];
}

/** `redocly lint` with the repository's config, as JSON, without any request leaving the machine. */
async function lint(file: string): Promise<{ report: LintReport; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, 'lint', '--config', CONFIG, '--format', 'json', file],
      {
        cwd: REPO_ROOT,
        maxBuffer: 16 * 1024 * 1024,
        timeout: 120_000,
        // Telemetry and the new-version check are the CLI's only requests of its own.
        env: {
          ...process.env,
          REDOCLY_TELEMETRY: 'off',
          REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
          REDOCLY_SUPPRESS_NOTIFICATIONS: 'true',
        },
      },
      (error, stdout, stderr) => {
        // Exit code 1 means problems were found: the report is still on stdout.
        try {
          resolve({ report: JSON.parse(stdout) as LintReport, stderr });
        } catch {
          reject(
            error ?? new Error(`redocly printed no JSON report: ${stdout.slice(0, 500)} ${stderr.slice(0, 2000)}`),
          );
        }
      },
    );
  });
}

const describe = (p: LintProblem) => `${p.severity} ${p.ruleId} at ${p.location?.[0]?.pointer ?? '?'}: ${p.message}`;

async function lintDocument(t: Test, text: string, show = true): Promise<LintReport> {
  const dir = mkdtempSync(join(tmpdir(), 'refstack-openapi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'openapi.json');
  writeFileSync(file, text);
  const { report, stderr } = await lint(file);
  if (show) for (const problem of report.problems) t.comment(describe(problem));
  if (show && report.totals.errors > 0) t.comment(stderr);
  return report;
}

t.test("redocly lint (recommended) finds no error in the gateway's merged document", async (t) => {
  const stack = await TestStack.system(t);
  const res = await fetch(`${stack.url}/docs/json`);
  t.equal(res.status, 200, '/docs/json answers');
  const text = await res.text();
  const schema = await fetch(`${stack.url}/api/v1/schema/`);
  t.same(await schema.json(), JSON.parse(text), '/api/v1/schema/ serves the same document');

  const report = await lintDocument(t, text);
  const errors = report.problems.filter((p) => p.severity === 'error').map(describe);
  t.same(errors, [], 'no errors');
  t.equal(report.totals.errors, 0, `${report.totals.errors} errors, ${report.totals.warnings} warnings`);
});

t.test("the config lets the seeds' paths, and only those, end in a slash", async (t) => {
  const operation = (id: string) => ({
    operationId: id,
    summary: id,
    security: [],
    responses: { 200: { description: 'ok' }, 400: { description: 'refused' } },
  });
  const seeds = [...LEGACY_ROUTES.map((route) => route.path), ...SECOND_SEED_PATHS.map((path) => `${path}/`)];
  const others = ['/api/v1/profile/', '/api/v1/auth/send_code/more/', '/api/authx/', '/api/v1/auth/jwt/'];
  const paths = Object.fromEntries(
    [...seeds, ...others].map((path, i) => [path, { post: operation(`operation${i}`) }]),
  );
  const report = await lintDocument(
    t,
    JSON.stringify({
      openapi: '3.1.0',
      info: { title: 'slashes', version: '1', license: { name: 'MIT', identifier: 'MIT' } },
      servers: [{ url: '/' }],
      paths,
    }),
    false,
  );
  const flagged = report.problems.filter((p) => p.severity === 'error').map((p) => p.location?.[0]?.pointer);
  const pointer = (path: string) => `#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  t.same(flagged.sort(), others.map(pointer).sort(), 'exactly the other paths with a slash are errors');
});
