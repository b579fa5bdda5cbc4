import t from 'tap';
import { curlPostWithExpect, TestStack } from '@refstack/shared/testing';
import { completeAnswer, openRaw, within } from './raw-socket.js';

// The review's reproductions at the HTTP edge, over raw sockets against the real stack: each must
// get a proper answer (never a 5xx) and no connection may be held open for good.
const stack = await TestStack.system(t);

const post = (path: string, length: number, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${length}\r\n${extra}\r\n`;
const statusOf = (answer: string) => Number(/(?:^|\r\n\r\n)HTTP\/1\.1 ([2-5]\d\d) /.exec(answer)?.[1]);

t.test('Expect: 100-continue over a raw socket answers 100 Continue, then 200', async (t) => {
  const body = JSON.stringify({ phone: '+79125550101' });
  const raw = await openRaw(stack.url);
  t.teardown(() => raw.socket.destroy());
  raw.socket.write(post('/api/v1/auth/send-code', Buffer.byteLength(body), 'Expect: 100-continue\r\n'));
  await raw.waitFor((data) => data.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 10_000);
  raw.socket.write(body);
  const answer = await raw.waitFor(completeAnswer, 10_000);
  t.equal(statusOf(answer), 200, 'the final answer is 200', { answer: answer.slice(0, 300) });
  t.match(answer, /"phone":"\+79125550101"/);
});

t.test('Expect: 100-continue from curl with a JSON body over 1 KiB answers 200', async (t) => {
  const body = `{"phone": "+79125550102"${' '.repeat(1500)}}`;
  const { status, stdout, stderr } = await curlPostWithExpect(`${stack.url}/api/v1/auth/send-code`, body);
  t.match(stderr, /^< HTTP\/1\.1 100 Continue/m, 'curl waited for 100 Continue');
  t.equal(status, '200');
  t.match(stdout, /"phone":"\+79125550102"/);
});

t.test('a legacy cookie holding %0A or a character outside Latin-1 answers 401 unauthorized', async (t) => {
  for (const value of ['a%0Ab.c.d', '%E2%80%AE.b.c', 'eyJ\u00e9.b.c']) {
    const raw = await openRaw(stack.url);
    raw.socket.write(
      Buffer.from(
        `GET /api/profile/ HTTP/1.1\r\nHost: gateway\r\nCookie: refstack_access=${value}\r\nConnection: close\r\n\r\n`,
        value.includes('\u00e9') ? 'utf8' : 'latin1',
      ),
    );
    const answer = await raw.waitFor(completeAnswer, 10_000);
    raw.socket.destroy();
    t.equal(statusOf(answer), 401, JSON.stringify(value));
    t.match(answer, /application\/problem\+json[^]*"code":"unauthorized"/);
  }
});

t.test('stalled, trickling and silent connections are closed within 30 s, with a 408 problem', async (t) => {
  const stalled = await openRaw(stack.url);
  const trickling = await openRaw(stack.url);
  const silent = await openRaw(stack.url);
  stalled.socket.write(post('/api/v1/auth/send-code', 100) + '{"phone":');
  trickling.socket.write(post('/api/v1/auth/send-code', 1000));
  const drip = setInterval(() => trickling.socket.writable && trickling.socket.write(' '), 2000);
  t.teardown(() => {
    clearInterval(drip);
    for (const raw of [stalled, trickling, silent]) raw.socket.destroy();
  });
  const res = await fetch(`${stack.url}/health/live`, { signal: AbortSignal.timeout(5000) });
  t.equal(res.status, 200, 'others are served meanwhile');
  for (const [what, raw] of [
    ['stalled body', stalled],
    ['trickling body', trickling],
    ['silent connection', silent],
  ] as const) {
    const closedAfter = await within(raw.closed, 31_000);
    t.ok(closedAfter !== 'timeout' && closedAfter <= 30_000, `${what}: closed by the server after ${closedAfter} ms`);
    t.match(raw.received(), /^HTTP\/1\.1 408 [^]*"code":"request_timeout"/, `${what}: told why`);
  }
});

t.test('/metrics and the detailed readiness report are on the metrics port only', async (t) => {
  const metrics = await stack.request('GET', '/metrics');
  t.equal(metrics.status, 404, 'not on the public port');
  const ready = await stack.request('GET', '/health/ready');
  t.equal(ready.status, 200);
  t.same(
    ready.json,
    { status: 'ok', service: 'gateway', checks: { auth: { status: 'up' }, referral: { status: 'up' } } },
    'up or down per service, nothing else',
  );

  const internal = `http://127.0.0.1:${stack.ports.GATEWAY_METRICS_PORT}`;
  const scraped = await fetch(`${internal}/metrics`);
  t.equal(scraped.status, 200);
  t.match(await scraped.text(), /http_request_duration_seconds_count\{[^}]*service="gateway"/);
  const report = (await (await fetch(`${internal}/health/ready`)).json()) as Record<string, unknown>;
  t.match(report, {
    status: 'ok',
    checks: {
      auth: { status: 'up', latency_ms: Number, details: { redis: { status: 'up' } } },
      referral: { status: 'up', details: { postgres: { status: 'up' } } },
    },
  });
});

t.test('the stack is still healthy, and nothing answered 5xx or logged an error', async (t) => {
  t.equal((await stack.request('GET', '/health/ready')).status, 200);
  t.notOk(
    stack.lines.some((l) => /"status":5\d\d/.test(l)),
    'no 5xx answer was logged',
  );
  t.notOk(
    stack.lines.some((l) => /"level":(50|60)/.test(l)),
    'no error-level log line',
  );
});
