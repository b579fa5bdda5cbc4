import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RECORDER = fileURLToPath(new URL('../fixtures/record-modules.mjs', import.meta.url));
const AUTH = fileURLToPath(new URL('../../../../services/auth', import.meta.url));

/** Runs node with the source condition and tsx, and returns every module URL it resolved. */
async function moduleGraph(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; until?: RegExp } = {},
): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'module-graph-'));
  const record = join(dir, 'modules.txt');
  try {
    const child = spawn(
      process.execPath,
      ['--conditions=@refstack/source', '--import', 'tsx', '--import', RECORDER, ...args],
      {
        cwd: options.cwd,
        env: { ...process.env, ...options.env, RECORD_MODULES_TO: record },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (options.until?.test(output)) child.kill('SIGTERM');
      });
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await exited;
    clearTimeout(timer);
    if (!options.until && code !== 0) throw new Error(`exited ${code}: ${output}`);
    if (options.until && !options.until.test(output)) throw new Error(`never printed ${options.until}: ${output}`);
    return readFileSync(record, 'utf8').split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const loaded = (graph: string[], pkg: string) => graph.filter((url) => url.includes(`/node_modules/${pkg}/`));

t.test('importing @refstack/shared/contracts loads no Fastify, ioredis, pg or BullMQ', async (t) => {
  const graph = await moduleGraph(['--input-type=module', '-e', "await import('@refstack/shared/contracts')"], {
    cwd: AUTH,
  });
  t.ok(
    graph.some((url) => url.includes('/src/contracts/errors.ts')),
    `the contracts were loaded (${graph.length} modules)`,
  );
  for (const pkg of ['fastify', 'ioredis', 'pg', 'bullmq', '@fastify/swagger', 'pino'])
    t.same(loaded(graph, pkg), [], `no ${pkg}`);
});

t.test("the SMS worker's process loads neither Fastify nor its Swagger", async (t) => {
  const graph = await moduleGraph(['src/sms-worker.ts'], {
    cwd: AUTH,
    env: { LOG_LEVEL: 'info', REDIS_KEY_PREFIX: `graph-${process.pid}` },
    until: /sms worker ready/,
  });
  t.ok(loaded(graph, 'bullmq').length > 0, 'the worker itself was loaded');
  t.same(loaded(graph, '@fastify/swagger'), [], 'no Swagger');
  t.same(loaded(graph, 'fastify'), [], 'no Fastify');
});
