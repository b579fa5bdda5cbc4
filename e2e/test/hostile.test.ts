import t, { type Test } from 'tap';
import { TestStack } from '@refstack/shared/testing';

const b64url = (json: string) => Buffer.from(json).toString('base64url');

// Every public route, hit with hostile bodies, queries and headers: each answer must be a 4xx
// problem+json, never a 5xx, never a stack trace, never hanging.
const stack = await TestStack.system(t);
const login = await stack.signIn('+79125550001');
const bearer = { authorization: `Bearer ${login.json.tokens.access}` };

const deep = (depth: number): unknown => (depth === 0 ? 'x' : { a: deep(depth - 1) });
const wide = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i]));
const HOSTILE_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  1.5,
  [],
  {},
  [[[[]]]],
  'x'.repeat(60_000),
  deep(200),
  wide,
  "'; DROP TABLE users; --",
  '{"$gt": ""}',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  '%00',
  '\u0000\u0001\u0002',
  '\u202e+79123456789',
  'ｆｕｌｌｗｉｄｔｈ',
  '٠١٢٣٤٥٦٧٨٩',
  '+7\u200b912\u200b345\u200b67\u200b89',
  '😀'.repeat(100),
  '\ud800',
  { __proto__: { admin: true } },
  { constructor: { prototype: { admin: true } } },
];
const FIELDS = ['phone', 'code', 'invite_code', 'refresh', 'token', 'first_name', 'last_name', 'email'];
const ROUTES: Array<{ method: string; path: string; auth?: boolean }> = [
  { method: 'POST', path: '/api/v1/auth/send-code' },
  { method: 'POST', path: '/api/v1/auth/verify' },
  { method: 'POST', path: '/api/v1/auth/refresh' },
  { method: 'POST', path: '/api/v1/auth/logout' },
  { method: 'POST', path: '/api/v1/auth/token/verify' },
  { method: 'PATCH', path: '/api/v1/profile', auth: true },
  { method: 'PUT', path: '/api/v1/profile/invite', auth: true },
  { method: 'POST', path: '/api/auth/send-code/' },
  { method: 'POST', path: '/api/auth/verify/' },
  { method: 'PUT', path: '/api/profile/set-invite/', auth: true },
];

function check(t: Test, label: string, res: { status: number; text: string; headers: Headers }, ms: number) {
  const fine =
    res.status < 500 &&
    (res.status < 400 || /^application\/problem\+json/.test(res.headers.get('content-type') ?? '')) &&
    !/\bat .+:\d+:\d+/.test(res.text) &&
    // A hang or a runaway parse (a regular expression gone exponential) takes far longer than this;
    // an ordinary answer on a loaded two-core machine can take a second or two.
    ms < 10_000;
  if (!fine) t.fail(`${label}: ${res.status} in ${ms} ms: ${res.text.slice(0, 160)}`);
  return fine;
}

t.test('hostile bodies on every route with a body', async (t) => {
  let answered = 0;
  for (const route of ROUTES) {
    const headers = route.auth ? bearer : {};
    const bodies: string[] = [
      ...HOSTILE_VALUES.map((v) => JSON.stringify(v) ?? 'null'),
      ...FIELDS.flatMap((field) => HOSTILE_VALUES.map((v) => JSON.stringify({ [field]: v }))),
      '{"phone": "+79123456789", "phone": 1}',
      '{"__proto__": {"isAdmin": true}, "phone": "+79123456789"}',
      '[' + '['.repeat(5000) + ']'.repeat(5000) + ']',
      '{"phone": "\\ud800\\udc00"}',
    ];
    for (const raw of bodies) {
      const started = Date.now();
      const res = await stack.request(route.method, route.path, {
        raw,
        headers: { ...headers, 'content-type': 'application/json' },
      });
      if (check(t, `${route.method} ${route.path} ${raw.slice(0, 40)}`, res, Date.now() - started)) answered += 1;
    }
  }
  t.ok(answered > 1000, `${answered} hostile bodies answered properly`);
});

t.test('hostile queries and path parameters', async (t) => {
  const values = [
    '-1',
    '0',
    '1e9',
    'NaN',
    "1' OR '1'='1",
    '%00',
    '%FF%FE',
    'a'.repeat(5000),
    '[]',
    '{}',
    '..%2f..%2f',
    '%E2%80%AE',
  ];
  for (const v of values) {
    for (const path of [
      `/api/v1/profile/invited?limit=${v}`,
      `/api/v1/profile/invited?cursor=${v}`,
      `/api/v1/users?search=${v}&limit=${v}`,
      `/api/v1/users/${v}`,
    ]) {
      const started = Date.now();
      const res = await stack.request('GET', path, { headers: bearer });
      check(t, `GET ${path.slice(0, 60)}`, res, Date.now() - started);
    }
  }
  t.pass('queries answered');
});

t.test('hostile headers', async (t) => {
  const cases: Array<Record<string, string>> = [
    { authorization: 'Bearer ' + 'a'.repeat(7000) },
    { authorization: 'Bearer a.b.c' },
    { authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' },
    {
      authorization: `Bearer ${b64url('{"alg":"none","kid":"x"}')}.${b64url('{"sub":"1"}')}.`,
    },
    { 'content-type': 'application/json; charset=utf-16' },
    { 'content-type': 'text/html' },
    { 'content-type': 'application/x-www-form-urlencoded' },
    { 'x-request-id': 'x'.repeat(500) },
    { 'x-request-id': 'evil id; with spaces' },
    { 'x-forwarded-for': '1.1.1.1, 2.2.2.2, ' + '3.3.3.3, '.repeat(200) },
    { cookie: 'refstack_access=' + 'x'.repeat(3000) },
    { 'x-csrftoken': '<script>' },
  ];
  for (const headers of cases) {
    for (const route of [
      { method: 'GET', path: '/api/v1/profile' },
      { method: 'POST', path: '/api/v1/auth/send-code' },
      { method: 'PUT', path: '/api/profile/set-invite/' },
    ]) {
      const started = Date.now();
      const raw = route.method === 'GET' ? undefined : '{"phone":"+79125550002","invite_code":"AB12CD"}';
      const res = await stack.request(route.method, route.path, {
        raw,
        headers: { 'content-type': 'application/json', ...headers },
      });
      check(t, `${route.method} ${route.path} ${JSON.stringify(headers).slice(0, 60)}`, res, Date.now() - started);
    }
  }
  t.pass('headers answered');
});

t.test('the stack is still healthy after all of it', async (t) => {
  const ready = await stack.request('GET', '/health/ready');
  t.equal(ready.status, 200);
  t.notOk(
    stack.lines.some((l) => /"level":(50|60)/.test(l)),
    'no error-level log line: nothing blew up',
  );
});
