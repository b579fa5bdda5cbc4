import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { TEST_REDIS_URL, TestStack } from '@refstack/shared/testing';

// The HTTP layer itself, fed what a careless or hostile client sends over a raw socket: odd framing,
// pipelines, oversized and repeated headers, broken cookies, cursors that decode to the wrong thing,
// JSON of the wrong types at every depth. Nothing may answer 5xx, hang, or leave a lock, a
// connection or a Redis key behind.
const stack = await TestStack.system(t);
const login = await stack.signIn('+79125560001');
const bearer = `Bearer ${login.json.tokens.access as string}`;
const port = stack.ports.GATEWAY_PORT;

interface RawAnswer {
  /** Final status codes in the order they came (interim 1xx left out). */
  statuses: number[];
  text: string;
  ms: number;
}

/**
 * Writes the pieces to one connection (waiting `gapMs` between them), then reads until the server
 * closes it, `expect` final answers have arrived, or `waitMs` passed; the client closes it then.
 */
function raw(
  pieces: Array<string | Buffer>,
  options: { expect?: number; waitMs?: number; gapMs?: number } = {},
): Promise<RawAnswer> {
  const { expect = 1, waitMs = 5000, gapMs = 0 } = options;
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    // A body does not end in a line break: the next answer's status line follows it directly.
    const finals = () => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])).filter((s) => s >= 200);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ statuses: finals(), text, ms: Date.now() - started });
    };
    const timer = setTimeout(done, waitMs);
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      // The last answer's body is small; give it a moment to arrive after its status line.
      if (finals().length >= expect) setTimeout(done, 50);
    });
    socket.on('close', done);
    socket.on('error', done);
    socket.on('connect', async () => {
      for (const piece of pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

const json = (value: unknown) => JSON.stringify(value);
const post = (path: string, body: string, headers: string[] = []) =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
  `Content-Length: ${Buffer.byteLength(body)}\r\n` +
  `${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`;

function noServerError(t: Test, label: string, answer: RawAnswer, allowed: (status: number) => boolean = () => true) {
  const bad = answer.statuses.filter((s) => s >= 500 || !allowed(s));
  if (bad.length > 0 || /\bat .+:\d+:\d+/.test(answer.text))
    t.fail(`${label}: ${answer.statuses.join(',')} ${answer.text.slice(0, 200)}`);
  else t.pass(`${label}: ${answer.statuses.join(',') || 'closed'}`);
}

t.test('Expect in all its forms', async (t) => {
  const body = json({ phone: '+79125560002', pad: 'x'.repeat(2000) });
  const head =
    'POST /api/v1/auth/send-code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${body.length}\r\n`;
  const waited = await raw([`${head}Expect: 100-continue\r\n\r\n`, body], { gapMs: 300 });
  t.match(waited.text, /^HTTP\/1\.1 100 Continue\r\n/, 'the interim answer comes before the body is sent');
  noServerError(t, 'waits for 100 Continue', waited);
  noServerError(t, 'sends the body at once', await raw([`${head}Expect: 100-continue\r\n\r\n${body}`]));
  noServerError(t, 'mixed case', await raw([`${head}Expect: 100-Continue\r\n\r\n${body}`]));
  const unknown = await raw([`${head}Expect: teapot\r\n\r\n${body}`]);
  t.same(unknown.statuses, [417], 'an expectation nobody can meet is refused');
  t.match(unknown.text, /"code":"expectation_failed"/, 'as a problem');
  t.match(unknown.text, /x-request-id: /i, 'with a request id');
  noServerError(
    t,
    'two Expect headers',
    await raw([`${head}Expect: 100-continue\r\nExpect: 100-continue\r\n\r\n${body}`]),
  );
});

t.test('Transfer-Encoding and Content-Length in odd combinations', async (t) => {
  const body = json({ phone: '+79125560003' });
  const hex = body.length.toString(16);
  const start = 'POST /api/v1/auth/send-code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
  const cases: Array<[string, string, (s: number) => boolean]> = [
    ['chunked', `${start}Transfer-Encoding: chunked\r\n\r\n${hex}\r\n${body}\r\n0\r\n\r\n`, (s) => s < 500],
    [
      'chunked in two chunks',
      `${start}Transfer-Encoding: chunked\r\n\r\n3\r\n${body.slice(0, 3)}\r\n` +
        `${(body.length - 3).toString(16)}\r\n${body.slice(3)}\r\n0\r\n\r\n`,
      (s) => s < 500,
    ],
    [
      'both Content-Length and chunked',
      `${start}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n${hex}\r\n${body}\r\n0\r\n\r\n`,
      (s) => s === 400,
    ],
    [
      'two different Content-Lengths',
      `${start}Content-Length: 5\r\nContent-Length: 6\r\n\r\n${body}`,
      (s) => s === 400,
    ],
    ['a negative Content-Length', `${start}Content-Length: -1\r\n\r\n${body}`, (s) => s === 400],
    ['a signed Content-Length', `${start}Content-Length: +${body.length}\r\n\r\n${body}`, (s) => s === 400],
    [
      'a Content-Length beyond any body',
      `${start}Content-Length: 99999999999999999999\r\n\r\n${body}`,
      (s) => s >= 400 && s < 500,
    ],
    ['an unknown transfer coding', `${start}Transfer-Encoding: gzip\r\n\r\n${body}`, (s) => s >= 400 && s < 500],
    [
      'chunked twice',
      `${start}Transfer-Encoding: chunked, chunked\r\n\r\n${hex}\r\n${body}\r\n0\r\n\r\n`,
      (s) => s >= 400 && s < 500,
    ],
    [
      'a chunk size that is not hex',
      `${start}Transfer-Encoding: chunked\r\n\r\nzz\r\n${body}\r\n0\r\n\r\n`,
      (s) => s === 400,
    ],
    [
      'a chunk larger than the body limit',
      `${start}Transfer-Encoding: chunked\r\n\r\nfffffff\r\n${body}`,
      (s) => s === 413 || s === 400,
    ],
    [
      'a body shorter than its Content-Length, then silence',
      `${start}Content-Length: ${body.length + 10}\r\n\r\n${body}`,
      (s) => s >= 400 && s < 500,
    ],
    ['a body longer than its Content-Length', `${start}Content-Length: 3\r\n\r\n${body}`, (s) => s >= 400 && s < 500],
  ];
  for (const [label, request, allowed] of cases)
    noServerError(t, label, await raw([request], { waitMs: 3000 }), allowed);
});

t.test('pipelined requests are answered in order', async (t) => {
  const requests = [
    'GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n',
    post('/api/v1/auth/send-code', json({ phone: '+79125560004' })),
    `GET /api/v1/profile HTTP/1.1\r\nHost: x\r\nAuthorization: ${bearer}\r\n\r\n`,
    post('/api/v1/auth/verify', json({ phone: '+79125560004', code: 'nope' })),
    'GET /api/v1/profile/invited HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n',
  ];
  const answer = await raw([requests.join('')], { expect: requests.length });
  t.same(answer.statuses, [200, 200, 200, 400, 401, 404]);
});

t.test('huge and repeated headers', async (t) => {
  const get = (headers: string[]) =>
    `GET /api/v1/profile HTTP/1.1\r\nHost: x\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
  const huge = await raw([get([`X-Big: ${'a'.repeat(20_000)}`])]);
  t.same(huge.statuses, [431], 'a header block past the limit');
  noServerError(t, 'many small headers', await raw([get(Array.from({ length: 300 }, (_, i) => `X-H${i}: ${i}`))]));
  noServerError(t, 'one header repeated', await raw([get(Array.from({ length: 300 }, () => 'X-Same: same'))]));
  const twoTokens = await raw([get([`Authorization: ${bearer}`, 'Authorization: Bearer a.b.c'])]);
  noServerError(t, 'two Authorization headers', twoTokens, (s) => s === 200 || s === 401);
  noServerError(
    t,
    'two Content-Types',
    await raw([post('/api/v1/auth/send-code', json({ phone: '+79125560005' }), ['Content-Type: text/plain'])]),
  );
  noServerError(t, 'repeated request ids', await raw([get(['X-Request-Id: a', 'X-Request-Id: b'])]));
  noServerError(
    t,
    'repeated forwarding headers',
    await raw([get(['X-Forwarded-For: 1.1.1.1', 'X-Forwarded-For: 2.2.2.2', 'Forwarded: for=3.3.3.3'])]),
  );
  noServerError(t, 'a header line without a colon', await raw([get(['NoColonHere'])]), (s) => s === 400);
  noServerError(t, 'a folded header', await raw([get(['X-Folded: a', ' b'])]), (s) => s === 400 || s === 401);
});

t.test('legacy cookies with control characters, escapes and foreign bytes', async (t) => {
  const cookie = (value: string | Buffer) => [
    Buffer.from('GET /api/profile/ HTTP/1.1\r\nHost: x\r\nCookie: refstack_access='),
    Buffer.from(value),
    Buffer.from('\r\n\r\n'),
  ];
  const cases: Array<[string, string | Buffer, (s: number) => boolean]> = [
    ['an escaped line feed', '%0A', (s) => s === 401],
    ['an escaped NUL', 'a%00b.c.d', (s) => s === 401],
    ['escaped non-Latin-1', '%D0%BF%D1%80%D0%B8.%E2%80%AE.x', (s) => s === 401],
    ['a broken escape', '%E0%A4%A', (s) => s === 401],
    ['raw UTF-8 bytes', Buffer.from('привет.мир.x'), (s) => s === 401 || s === 400],
    ['a raw control byte', Buffer.from([0x61, 0x01, 0x62]), (s) => s === 400],
    ['a quoted value', '"a.b.c"', (s) => s === 401],
    ['a JWT-shaped value that is not a token', 'aaa.bbb.ccc', (s) => s === 401],
    ['an empty value', '', (s) => s === 401],
    ['a value of 8 KiB', 'x'.repeat(8192), (s) => s === 401 || s === 431],
    // Made into an Authorization header for referral: the request it gets is no larger than this one.
    ['a JWT-shaped value of 8 KiB', `${'a'.repeat(8300)}.b.c`, (s) => s === 401],
  ];
  for (const [label, value, allowed] of cases) noServerError(t, label, await raw(cookie(value)), allowed);
  const csrf = await raw([
    'PUT /api/profile/set-invite/ HTTP/1.1\r\nHost: x\r\nCookie: refstack_access=%0A\r\nX-CSRFTOKEN: x\r\n' +
      'Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
  ]);
  noServerError(t, 'a broken cookie on a change', csrf, (s) => s === 401 || s === 400);
});

t.test('cursors that decode to the wrong thing', async (t) => {
  const db = new pg.Client({ connectionString: stack.stores.databaseUrl });
  await db.connect();
  t.teardown(() => db.end());
  await db.query('UPDATE users SET is_admin = true WHERE id = $1', [login.json.user.id]);
  const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');
  const cursors = [
    ...['{}', '[]', 'null', '"x"', '1', '["a"]', '["a","b","c"]', '[1,2]', '[null,null]', '[["x"],{"y":1}]'].map(b64),
    b64('["2026-13-01 00:00:00+00","1"]'),
    b64('["2026-02-30 00:00:00+00","1"]'),
    b64('["2026-11-22 25:00:00+00","1"]'),
    b64('["0000-01-01 00:00:00+00","1"]'),
    b64('["2026-11-22 06:47:02+99","1"]'),
    b64('["2026-11-22 06:47:02.123456+00","0"]'),
    b64('["2026-11-22 06:47:02.123456+00","-5"]'),
    b64('["2026-11-22 06:47:02.123456+00","99999999999999999999"]'),
    b64('["99999999999999999999"]'),
    b64('["0"]'),
    b64(Buffer.from([0xff, 0xfe, 0x00, 0x01])),
    b64('["2026-11-22 06:47:02.123456+00","1"]'),
  ];
  for (const cursor of cursors) {
    for (const path of [`/api/v1/profile/invited?cursor=${cursor}`, `/api/v1/users?cursor=${cursor}`]) {
      const res = await stack.request('GET', path, { headers: { authorization: bearer } });
      if (res.status !== 200 && !(res.status === 400 && res.json?.code === 'validation_failed'))
        t.fail(`${path}: ${res.status} ${res.text.slice(0, 160)}`);
      else
        t.pass(
          `${Buffer.from(cursor, 'base64url').toString('latin1').slice(0, 50)} on ${path.split('?')[0]}: ${res.status}`,
        );
    }
  }
});

t.test('JSON of the wrong type at every depth of every body', async (t) => {
  const routes: Array<{ method: string; path: string; body: Record<string, unknown>; auth?: boolean }> = [
    { method: 'POST', path: '/api/v1/auth/send-code', body: { phone: '+79125560009' } },
    {
      method: 'POST',
      path: '/api/v1/auth/verify',
      body: { phone: '+79125560009', code: '123456', invite_code: 'AB12CD' },
    },
    { method: 'POST', path: '/api/v1/auth/refresh', body: { refresh: 'x' } },
    { method: 'POST', path: '/api/v1/auth/logout', body: { refresh: 'x' } },
    { method: 'POST', path: '/api/v1/auth/token/verify', body: { token: 'a.b.c' } },
    {
      method: 'PATCH',
      path: '/api/v1/profile',
      body: { first_name: 'A', last_name: 'B', email: 'a@example.com' },
      auth: true,
    },
    { method: 'PUT', path: '/api/v1/profile/invite', body: { invite_code: 'AB12CD' }, auth: true },
    { method: 'POST', path: '/api/auth/verify/', body: { phone: '79125560009', code: '123456' } },
    { method: 'PUT', path: '/api/profile/set-invite/', body: { invite_code: 'AB12CD' }, auth: true },
  ];
  const wrong: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, '', 'x', [], [1], {}, { a: 1 }, [[[]]], [{}]];
  /** The body with the value at `path` replaced, and the body wrapped in arrays and objects down to `depth`. */
  function* variants(body: Record<string, unknown>): Generator<unknown> {
    for (const key of Object.keys(body)) {
      for (const value of wrong) {
        yield { ...body, [key]: value };
        yield { ...body, [key]: { [key]: value } };
        yield { ...body, [key]: [body[key], value] };
        yield { ...body, [key]: { nested: { deeper: [body[key], { [key]: value }] } } };
      }
    }
    let wrapped: unknown = body;
    for (let depth = 0; depth < 6; depth += 1) {
      wrapped = depth % 2 === 0 ? [wrapped] : { body: wrapped };
      yield wrapped;
    }
    for (const value of wrong) yield value;
  }
  let answered = 0;
  let sent = 0;
  for (const route of routes) {
    for (const body of variants(route.body)) {
      sent += 1;
      const res = await stack.request(route.method, route.path, {
        raw: json(body),
        headers: {
          'content-type': 'application/json',
          ...(route.auth ? { authorization: bearer } : {}),
          'x-csrftoken': 'x',
        },
      });
      const problem = /^application\/problem\+json/.test(res.headers.get('content-type') ?? '');
      if (res.status >= 500 || (res.status >= 400 && !problem))
        t.fail(`${route.method} ${route.path} ${json(body).slice(0, 80)}: ${res.status} ${res.text.slice(0, 120)}`);
      else answered += 1;
    }
  }
  t.equal(answered, sent, `${answered} of ${sent} bodies answered without a server error`);
});

t.test('nothing is left behind: no lock, no connection, no key without an expiry', async (t) => {
  const ready = await stack.request('GET', '/health/ready');
  t.equal(ready.status, 200, 'the stack is healthy');
  t.notOk(
    stack.lines.some((l) => /"level":(50|60)/.test(l)),
    'no error-level log line',
  );

  const db = new pg.Client({ connectionString: stack.stores.databaseUrl });
  await db.connect();
  t.teardown(() => db.end());
  // Only this stack's database: the server is shared with other test runs, whose locks are theirs.
  const locks = await db.query<{ n: string }>(
    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' " +
      'AND database = (SELECT oid FROM pg_database WHERE datname = current_database())',
  );
  t.equal(locks.rows[0]?.n, '0', 'no advisory lock is held');
  const idleInTransaction = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM pg_stat_activity ' +
      "WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
  );
  t.equal(idleInTransaction.rows[0]?.n, '0', 'no connection sits in an open transaction');

  // Every raw connection of this file is closed by now, so the gateway must hold none but the
  // keep-alive connections this process's own fetch still has open.
  const ss = (filter: string, ...flags: string[]) =>
    spawnSync('ss', ['-Htn', ...flags, 'state', 'established', filter], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .filter(Boolean);
  const strays = () => {
    const ours = new Set(
      ss(`( dport = :${port} )`, '-p')
        .filter((l) => l.includes(`pid=${process.pid},`))
        .map((l) => l.split(/\s+/)[2]?.split(':').pop()),
    );
    return ss(`( sport = :${port} )`).filter((l) => !ours.has(l.split(/\s+/)[3]?.split(':').pop()));
  };
  const deadline = Date.now() + 20_000;
  while (strays().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
  t.same(strays(), [], 'no connection to the gateway stays open');

  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  t.teardown(() => redis.disconnect());
  const forever: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${stack.stores.redisPrefix}*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      // The queue's own bookkeeping and the development signing key are meant to stay.
      if (key.includes(':{bullmq}:') || key.endsWith(':jwt:dev-signing-key')) continue;
      if ((await redis.pttl(key)) < 0) forever.push(key);
    }
  } while (cursor !== '0');
  t.same(forever, [], 'every OTP, limit and session key expires by itself');
});
