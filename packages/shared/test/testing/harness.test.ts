import t from 'tap';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineLog, PORT_VARS, ProcessGroup, TestStack } from '../../src/testing/index.js';

// A program that says it is up and ends cleanly on SIGTERM, as the services do.
const SERVICE_LIKE = [
  '-e',
  "process.on('SIGTERM', () => process.exit(0)); console.log('up'); setInterval(() => undefined, 1000)",
];

t.test('the line log reads SMS from the worker only, however start.mjs pads its name', async (t) => {
  const log = new LineLog();
  log.push('[sms-worker] SMS to +79120000001: Your login code is 1111');
  log.push('[auth]       {"level":30,"msg":"SMS to +79120000002: Your login code is 2222"}');
  log.pushFrom('sms-worker', 'SMS to +79120000001: Your login code is 3333');
  log.pushFrom('sms-worker', 'SMS to +79120000001: +79120000003 activated your invite code');
  log.push('> tsc -b');
  t.same(
    log.sms.map((m) => m.to),
    ['+79120000001', '+79120000001', '+79120000001'],
    'not the auth line',
  );
  t.equal(log.smsCode('+79120000001'), '3333', 'the latest login code, past a note without one');
  t.equal(log.smsCode('+79120000002'), undefined);
  t.equal(log.lines[2], '[sms-worker] SMS to +79120000001: Your login code is 3333', 'tagged like start.mjs');
  t.equal(log.lines[4], '> tsc -b', 'an untagged line is kept as it is');
});

t.test('waiting on the line log: for a line to come, a line already seen, and up to a deadline', async (t) => {
  const log = new LineLog();
  log.pushFrom('auth', 'first');
  const later = log.waitForLine(/second/g, 1000);
  const sms = log.nextSms('+79120000001', /login code/);
  setImmediate(() => {
    log.pushFrom('auth', 'second');
    log.pushFrom('sms-worker', 'SMS to +79120000001: Your login code is 1234');
  });
  t.equal(await later, '[auth] second');
  t.equal(await sms, 'Your login code is 1234');
  t.equal(await log.waitForLine((l) => l.endsWith('first'), 1000, 0), '[auth] first', 'from index 0 on');
  const started = Date.now();
  await t.rejects(log.waitForLine(/never/, 50), /no line matching \/never\/ within 50 ms/);
  t.ok(Date.now() - started < 1000, 'gave up at the deadline');
});

t.test('a process group: lines into the log, stop, kill, and output straight to a file', async (t) => {
  const log = new LineLog();
  const group = new ProcessGroup({ env: process.env, stdout: log });
  t.teardown(() => group.stopAll(2000));
  group.startExtra('one', SERVICE_LIKE);
  group.startExtra('two', SERVICE_LIKE);
  await log.waitForLine(/^\[one\] up$/, 5000, 0);
  await log.waitForLine(/^\[two\] up$/, 5000, 0);
  t.throws(() => group.startExtra('one', SERVICE_LIKE), /running already/);
  t.ok(group.pid('one'), 'a pid while it runs');
  t.same(await group.stop('one'), { code: 0, signal: null }, 'SIGTERM: a clean exit');
  t.same(await group.stop('one'), { code: 0, signal: null }, 'stopped again: the same exit');
  t.equal(group.pid('one'), undefined);
  t.same(await group.kill('two'), { code: null, signal: 'SIGKILL' });
  t.throws(() => group.stop('three'), /never started/);

  const dir = mkdtempSync(join(tmpdir(), 'harness-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = openSync(join(dir, 'out.log'), 'w');
  const toFile = new ProcessGroup({ env: process.env, stdout: file });
  toFile.startExtra('once', ['-e', "console.log('to the file')"]);
  t.same(await toFile.exited('once'), { code: 0, signal: null });
  closeSync(file);
  t.equal(readFileSync(join(dir, 'out.log'), 'utf8'), 'to the file\n', 'written as it is');
});

t.test('a test stack owns its environment: distinct free ports, its prefix, a given database', async (t) => {
  const stack = await TestStack.create(t, { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/given', LOG_LEVEL: 'warn' });
  const ports = PORT_VARS.map((name) => stack.ports[name]);
  t.equal(new Set(ports).size, PORT_VARS.length, 'one port each');
  for (const name of PORT_VARS) t.equal(stack.env[name], String(stack.ports[name]), `${name} in the environment`);
  t.equal(stack.url, `http://127.0.0.1:${stack.ports.GATEWAY_PORT}`);
  t.equal(stack.stores.databaseUrl, 'postgres://postgres@127.0.0.1:1/given', 'no throwaway database when one is given');
  t.match(stack.stores.redisPrefix, /^test-\d+-[0-9a-f]{8}$/);
  t.equal(stack.env['LOG_LEVEL'], 'warn', 'overrides win');
  t.equal(stack.env['NODE_ENV'], 'development');
  await t.rejects(stack.stopSystem(), /not started/);
});
