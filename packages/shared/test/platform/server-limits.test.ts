import { connect, type AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { drainAndClose } from '../../src/platform/drain.js';
import { EDGE_MAX_HEADER_BYTES } from '../../src/platform/server-limits.js';
import { createOperationsApp, createServiceApp } from '../../src/platform/service-app.js';
import { LogCapture, testConfig } from '../../src/testing/index.js';

async function listening(t: Test) {
  const logs = new LogCapture();
  const app = createServiceApp({ service: 'demo', config: testConfig({ LOG_LEVEL: 'info' }), logStream: logs });
  app.post('/echo', async (request) => request.body);
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  return { app, logs, port: (app.server.address() as AddressInfo).port };
}

/** Sends `bytes` on a fresh connection; resolves with all the server sent once it closes (or at the deadline). */
function exchange(
  port: number,
  bytes: string,
  deadlineMs: number,
): Promise<{ data: string; closedAfterMs: number | undefined }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = Date.now();
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data, closedAfterMs: undefined });
    }, deadlineMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ data, closedAfterMs: Date.now() - started });
    });
    socket.once('connect', () => bytes && socket.write(bytes));
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The x-request-id of a raw answer's head, if it has one. */
function requestIdOf(data: string): string | undefined {
  const head = data.slice(0, data.indexOf('\r\n\r\n'));
  return /^x-request-id: *(.*)$/im.exec(head)?.[1]?.trim();
}

function problemOf(data: string): unknown {
  try {
    return JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4));
  } catch {
    return data;
  }
}

t.test(
  "a service's port, with the default limits, closes stalled requests and silent connections with a 408 problem",
  async (t) => {
    const { port, logs } = await listening(t);
    const [stalled, silent] = await Promise.all([
      exchange(
        port,
        'POST /echo HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
        30_000,
      ),
      exchange(port, '', 30_000),
    ]);
    for (const [what, result] of [
      ['a body that stalls', stalled],
      ['a connection that sends nothing', silent],
    ] as const) {
      t.ok(
        result.closedAfterMs !== undefined,
        `${what}: closed by the server within 30 s (after ${result.closedAfterMs} ms)`,
      );
      t.match(result.data, /^HTTP\/1\.1 408 Request Timeout\r\n[^]*content-type: application\/problem\+json/i, what);
      t.match(problemOf(result.data), {
        type: 'urn:refstack:problem:request_timeout',
        status: 408,
        code: 'request_timeout',
        detail: String,
      });
      t.match(requestIdOf(result.data), UUID, `${what}: a request id, like every answer`);
    }
    t.not(requestIdOf(stalled.data), requestIdOf(silent.data), 'one id per answer');
    t.notOk(
      logs.lines.some((l) => Number(l['level']) >= 50),
      'nothing logged as an error',
    );
  },
);

t.test('bytes that are not HTTP, and headers over the size limit, are problem+json answers too', async (t) => {
  const { port } = await listening(t);
  const garbage = await exchange(port, 'HELLO THERE\r\n\r\n', 10_000);
  t.match(garbage.data, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.match(problemOf(garbage.data), { status: 400, code: 'validation_failed' });

  const huge = await exchange(
    port,
    `GET /health/live HTTP/1.1\r\nHost: demo\r\nX-Big: ${'a'.repeat(40 * 1024)}\r\n\r\n`,
    10_000,
  );
  t.match(huge.data, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  t.match(problemOf(huge.data), { status: 431, code: 'headers_too_large' });
  t.match(requestIdOf(garbage.data), UUID, '400: a request id, like every answer');
  t.match(requestIdOf(huge.data), UUID, '431: a request id, like every answer');
  t.not(requestIdOf(garbage.data), requestIdOf(huge.data), 'one id per answer');
});

t.test('an Expect other than 100-continue, and CONNECT, are problem+json answers with a request id', async (t) => {
  const { port } = await listening(t);
  const body = '{"a":1}';
  const teapot = await exchange(
    port,
    `POST /echo HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
      `Expect: teapot\r\nX-Request-Id: expect-check-1\r\n\r\n${body}`,
    10_000,
  );
  t.match(teapot.data, /^HTTP\/1\.1 417 Expectation Failed\r\n/);
  t.match(problemOf(teapot.data), { status: 417, code: 'expectation_failed' });
  t.equal(requestIdOf(teapot.data), 'expect-check-1', "the client's request id");
  t.ok(teapot.closedAfterMs !== undefined, 'and the connection closed');

  const tunnel = await exchange(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 10_000);
  t.match(tunnel.data, /^HTTP\/1\.1 404 Not Found\r\n/);
  t.match(problemOf(tunnel.data), { status: 404, code: 'not_found' });
  t.match(requestIdOf(tunnel.data), UUID, 'a request id');
});

// The gateway forwards what it accepted with a few headers of its own: a service behind it must
// take at least that much.
t.test("a service's own port takes twice the header bytes of the public port", async (t) => {
  const { port } = await listening(t);
  const edge = createServiceApp({
    service: 'edge',
    config: testConfig(),
    exposure: 'public',
    limits: { maxHeaderBytes: EDGE_MAX_HEADER_BYTES },
  });
  await edge.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => edge.close());
  const edgePort = (edge.server.address() as AddressInfo).port;
  const request = (bytes: number) =>
    `GET /health/live HTTP/1.1\r\nHost: demo\r\nConnection: close\r\nX-Big: ${'a'.repeat(bytes)}\r\n\r\n`;
  t.match((await exchange(edgePort, request(EDGE_MAX_HEADER_BYTES), 10_000)).data, /^HTTP\/1\.1 431 /, 'the edge: 431');
  t.match((await exchange(port, request(EDGE_MAX_HEADER_BYTES), 10_000)).data, /^HTTP\/1\.1 200 /, 'a service: 200');
  t.match((await exchange(port, request(2 * EDGE_MAX_HEADER_BYTES), 10_000)).data, /^HTTP\/1\.1 431 /, 'up to twice');
});

t.test(
  'a public app serves no /metrics and says only up or down; its operations app serves both and follows its drain',
  async (t) => {
    const config = testConfig();
    const readiness = {
      store: async () => ({ at: 'db.internal:5432' }),
      cache: async () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.7:6379')),
    };
    const app = createServiceApp({ service: 'edge', config, exposure: 'public', readiness });
    app.get('/hello', async () => ({ hello: true }));
    const operations = createOperationsApp(app, { service: 'edge', config, readiness });
    let operationsClosed = false;
    operations.addHook('onClose', async () => {
      operationsClosed = true;
    });
    await app.inject({ method: 'GET', url: '/hello' });

    t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404);
    const brief = await app.inject({ method: 'GET', url: '/health/ready' });
    t.equal(brief.statusCode, 503);
    t.same(brief.json(), {
      status: 'unavailable',
      service: 'edge',
      checks: { store: { status: 'up' }, cache: { status: 'down' } },
    });

    const metrics = await operations.inject({ method: 'GET', url: '/metrics' });
    t.match(metrics.body, /http_request_duration_seconds_count\{[^}]*route="\/hello"[^}]*\} 1/);
    const full = await operations.inject({ method: 'GET', url: '/health/ready' });
    t.match(full.json(), {
      checks: {
        store: { status: 'up', details: { at: 'db.internal:5432' } },
        cache: { status: 'down', error: /ECONNREFUSED 10\.0\.0\.7/ },
      },
    });

    const closing = drainAndClose(app);
    const draining = await operations.inject({ method: 'GET', url: '/health/ready' });
    t.equal(draining.statusCode, 503);
    t.match(draining.json(), { status: 'draining' }, 'the operations port reports the public app draining');
    await closing;
    t.ok(operationsClosed, 'and closes with it');
  },
);
