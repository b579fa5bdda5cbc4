/** The compose healthcheck commands, run for real under sh against stand-in servers. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { PROCESSES } from '@refstack/shared/contracts';
import { interpolate, parseCompose } from '../src/parsers/compose.js';
import { readRepoFile } from '../src/parsers/workspace.js';

const compose = parseCompose(readRepoFile('docker-compose.yml'));

interface RunResult {
  code: number | null;
  stderr: string;
}

/**
 * Runs a CMD-SHELL healthcheck as the container would: after compose interpolation, under sh, in a
 * "type": "module" directory (the node one-liners are ES modules there, as in the images).
 */
function runHealthcheck(command: string, env: Record<string, string>, cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', interpolate(command, {})], {
      cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

t.test('the healthcheck commands work', async (t) => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'refstack-healthcheck-'));
  writeFileSync(path.join(cwd, 'package.json'), '{"type": "module"}\n');
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  // A missing healthcheck must fail every probe below, not pass by running nothing.
  const commandOf = (name: string) =>
    String((compose.services[name]?.healthcheck?.test as string[] | undefined)?.[1] ?? 'exit 99');

  for (const { name, portVar } of PROCESSES) {
    if (!portVar) continue;
    await t.test(`${name}: /health/ready on ${portVar}`, async (t) => {
      let status = 200;
      const paths: string[] = [];
      const server = createHttpServer((req, res) => {
        paths.push(req.url ?? '');
        res.writeHead(req.url === '/health/ready' ? status : 404).end('{}');
      });
      const port = await listen(server);
      const env = { [portVar]: String(port) };
      t.match(await runHealthcheck(commandOf(name), env, cwd), { code: 0 }, 'healthy when ready answers 200');
      status = 503;
      t.match(await runHealthcheck(commandOf(name), env, cwd), { code: 1 }, 'unhealthy when ready answers 503');
      t.ok(paths.length >= 2 && paths.every((p) => p === '/health/ready'), 'asks /health/ready');
      await close(server);
      t.match(await runHealthcheck(commandOf(name), env, cwd), { code: 1 }, 'unhealthy when nothing listens');
    });
  }

  await t.test(
    'sms-worker: /health/live on SMS_WORKER_METRICS_PORT, and Redis answers PING at REDIS_URL',
    async (t) => {
      let reply = '+PONG\r\n';
      const redis = createTcpServer((socket) => {
        socket.on('data', (d) => {
          if (String(d).startsWith('PING')) socket.end(reply);
        });
      });
      let live = 200;
      const paths: string[] = [];
      const ops = createHttpServer((req, res) => {
        paths.push(req.url ?? '');
        res.writeHead(req.url === '/health/live' ? live : 404).end('{}');
      });
      const env = {
        REDIS_URL: `redis://127.0.0.1:${await listen(redis)}`,
        SMS_WORKER_METRICS_PORT: String(await listen(ops)),
      };
      const run = (extra: Record<string, string> = {}) =>
        runHealthcheck(commandOf('sms-worker'), { ...env, ...extra }, cwd);
      t.match(await run(), { code: 0 }, 'healthy when live and Redis answers +PONG');
      t.ok(paths.length === 1 && paths[0] === '/health/live', 'asks /health/live');
      live = 500;
      t.match(await run(), { code: 1 }, 'unhealthy when the worker does not answer live');
      t.match(await run({ SMS_WORKER_METRICS_PORT: '0' }), { code: 0 }, 'with no operations port, Redis alone');
      live = 200;
      reply = '-LOADING Redis is loading the dataset in memory\r\n';
      t.match(await run(), { code: 1 }, 'unhealthy on an error reply');
      reply = '+PONG\r\n';
      await close(ops);
      t.match(await run(), { code: 1 }, 'unhealthy when the worker does not listen');
      await close(redis);
      t.match(await run({ SMS_WORKER_METRICS_PORT: '0' }), { code: 1 }, 'unhealthy when Redis does not listen');
    },
  );
});
