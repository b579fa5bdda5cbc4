import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import Fastify, { type FastifyInstance } from 'fastify';
import { drainAndClose } from '@refstack/shared/platform';
import { eventually, testConfig, tricklingServer } from '@refstack/shared/testing';
import { buildApp } from '../src/app.js';
import { buildOperationsApp } from '../src/operations.js';
import { poolsOf } from '../src/readiness.js';

interface Instance {
  name: string;
  url: string;
  port: number;
  hits: string[];
  /** How many readiness probes it answered. */
  probes: number;
  app: FastifyInstance;
  /** Stops listening: connections are refused until `restart`. */
  stop(): Promise<void>;
  restart(): Promise<void>;
}

/** An auth instance stand-in on a fixed port, counting what reaches it; `drop` paths lose the socket. */
async function instance(t: Test, name: string, drop: string[] = [], port = 0): Promise<Instance> {
  const hits: string[] = [];
  const build = () => {
    const app = Fastify();
    app.get('/health/ready', async () => {
      self.probes += 1;
      return { status: 'ok', checks: { redis: { status: 'up' } } };
    });
    app.all('/*', async (request, reply) => {
      hits.push(`${request.method} ${request.url}`);
      if (drop.includes(request.url)) {
        request.raw.socket.destroy();
        return reply;
      }
      return { instance: name };
    });
    return app;
  };
  let app = build();
  await app.listen({ host: '127.0.0.1', port });
  const bound = (app.server.address() as { port: number }).port;
  const self: Instance = {
    name,
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    hits,
    probes: 0,
    app,
    stop: () => self.app.close(),
    async restart() {
      app = build();
      await app.listen({ host: '127.0.0.1', port: bound });
      self.app = app;
    },
  };
  t.teardown(() => self.app.close());
  return self;
}

/**
 * Accepts connections and never answers: a stopped process whose socket still listens. `release`
 * drops every connection it holds.
 */
async function silent(t: Test): Promise<{ url: string; release(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const release = () => {
    for (const socket of sockets) socket.destroy();
  };
  t.teardown(async () => {
    release();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, release };
}

/** A gateway and its operations port in front of these auth instances. */
async function gatewayFor(t: Test, authUrls: string[], env: Record<string, string> = {}) {
  const referral = await instance(t, 'referral');
  const config = testConfig({
    AUTH_URLS: authUrls.join(','),
    REFERRAL_URL: referral.url,
    GATEWAY_HEALTH_INTERVAL_MS: '0',
    ...env,
  });
  const gateway = await buildApp(config);
  const operations = buildOperationsApp(gateway, config);
  t.teardown(async () => {
    await operations.close();
    await gateway.close();
  });
  const send = (url = '/api/v1/auth/send-code', method: 'POST' | 'GET' = 'POST') =>
    gateway.inject({ method, url, payload: method === 'POST' ? { phone: '+79123456789' } : undefined });
  return { gateway, operations, send };
}

async function setup(t: Test, env: Record<string, string> = {}, drop: string[] = []) {
  const a = await instance(t, 'a', drop);
  const b = await instance(t, 'b', drop);
  return { a, b, ...(await gatewayFor(t, [a.url, b.url], env)) };
}

t.test('requests go round-robin over the instances of AUTH_URLS', async (t) => {
  const { a, b, send } = await setup(t);
  const answers = await Promise.all(Array.from({ length: 10 }, () => send()));
  t.ok(answers.every((r) => r.statusCode === 200));
  t.equal(a.hits.length, 5);
  t.equal(b.hits.length, 5);
});

t.test('an instance that refuses connections is taken out; nothing fails meanwhile', async (t) => {
  const { a, b, send, operations } = await setup(t);
  await b.stop();
  const answers = [];
  for (let i = 0; i < 10; i += 1) answers.push(await send());
  t.same(
    answers.map((r) => r.statusCode),
    Array(10).fill(200),
    'a request that never reached the instance goes to the other, whatever its method',
  );
  t.equal(a.hits.length, 10);
  const ready = await operations.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200, 'the service is ready while one instance is');
  t.match(ready.json().checks.auth.details.instances, {
    [a.url]: { status: 'up' },
    [b.url]: { status: 'down', error: /ECONNREFUSED|connect/ },
  });
  await a.stop();
  const none = await operations.inject({ method: 'GET', url: '/health/ready' });
  t.equal(none.statusCode, 503, 'no instance ready: the gateway is not');
  t.equal((await send()).statusCode, 503);
});

/**
 * Listens and never accepts, its one-place accept queue filled: the kernel drops further connection
 * attempts, as a host that is gone or behind a lost route would.
 */
async function unconnectable(t: Test): Promise<string> {
  const child = spawn(
    'python3',
    [
      '-c',
      'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\n' +
        'print(s.getsockname()[1],flush=True)\nsys.stdin.read()',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.teardown(() => child.kill());
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const fillers = Array.from({ length: 3 }, () => net.connect(port, '127.0.0.1').on('error', () => undefined));
  t.teardown(() => fillers.forEach((socket) => socket.destroy()));
  await once(fillers[0]!, 'connect');
  return `http://127.0.0.1:${port}`;
}

t.test('an instance that takes no connections is taken out, not waited on as a busy one', async (t) => {
  const a = await instance(t, 'a');
  const gone = await unconnectable(t);
  const { gateway, send } = await gatewayFor(t, [gone, a.url]);
  const answer = await send();
  t.equal(answer.statusCode, 200, 'the request that could not connect went to the other instance');
  t.same(answer.json(), { instance: 'a' });
  t.match(poolsOf(gateway).auth.instances[0], { status: 'out', reason: 'UND_ERR_CONNECT_TIMEOUT' });
});

t.test('with one instance out, the others share the requests evenly', async (t) => {
  const [a, b, c] = [await instance(t, 'a'), await instance(t, 'b'), await instance(t, 'c')];
  const { send } = await gatewayFor(t, [a.url, b.url, c.url]);
  await a.stop();
  t.equal((await send()).statusCode, 200, 'the first request meets the stopped instance, which is taken out');
  b.hits.length = 0;
  c.hits.length = 0;
  for (let i = 0; i < 12; i += 1) t.equal((await send()).statusCode, 200);
  t.same([b.hits.length, c.hits.length], [6, 6], 'not two in three to the instance after the one out');
});

t.test('an instance that takes connections and never answers leaves the service ready', async (t) => {
  const a = await instance(t, 'a');
  const { url: quiet } = await silent(t);
  const { gateway, operations } = await gatewayFor(t, [a.url, quiet]);
  const ready = await operations.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200, ready.body);
  t.match(ready.json().checks.auth.details.instances, {
    [a.url]: { status: 'up' },
    [quiet]: { status: 'down', error: 'no answer within 1500 ms' },
  });
  t.equal(
    (await gateway.inject({ method: 'GET', url: '/health/ready' })).statusCode,
    200,
    'and the public port says so',
  );
});

t.test('a request that finds every connection to its instance busy is answered 503, not queued', async (t) => {
  const quiet = await silent(t);
  const { gateway, send } = await gatewayFor(t, [quiet.url], { UPSTREAM_TIMEOUT_MS: '60000' });
  let answered = 0;
  // Each holds one of the instance's 128 connections, waiting up to a minute for its answer.
  const holding = Array.from({ length: 128 }, () => send().finally(() => (answered += 1)));
  const late = await send();
  t.equal(late.statusCode, 503, late.body);
  t.equal(late.json().code, 'service_unavailable');
  t.equal(answered, 0, 'while the requests that hold the connections still wait');
  t.equal(poolsOf(gateway).auth.instances[0]?.status, 'in', 'a busy instance is not taken out for it');
  quiet.release();
  t.ok((await Promise.all(holding)).every((answer) => answer.statusCode === 503));
});

t.test('the API description comes from an instance that answers', async (t) => {
  const a = await instance(t, 'a');
  const b = await instance(t, 'b');
  const { gateway } = await gatewayFor(t, [a.url, b.url]);
  await a.stop();
  const docs = await gateway.inject({ method: 'GET', url: '/docs/json' });
  t.equal(docs.statusCode, 200, 'the first instance is down, the second answers');
  t.ok(b.hits.includes('GET /openapi.json'));
});

t.test('readiness asked many times at once shares the probes in flight', async (t) => {
  const { a, b, gateway, operations } = await setup(t);
  const asks = Array.from({ length: 20 }, (_, i) =>
    (i % 2 === 0 ? gateway : operations).inject({ method: 'GET', url: '/health/ready' }),
  );
  t.ok((await Promise.all(asks)).every((answer) => answer.statusCode === 200));
  // One probe per instance for the twenty asks; the gateway's own periodic check may add one.
  t.ok(a.probes <= 2 && b.probes <= 2, `20 asks, probes: a ${a.probes}, b ${b.probes}`);
});

t.test('an instance taken out comes back after a ready probe', async (t) => {
  const { a, b, send } = await setup(t, { GATEWAY_HEALTH_INTERVAL_MS: '100', GATEWAY_EJECT_SECONDS: '1' });
  await b.stop();
  for (let i = 0; i < 4; i += 1) t.equal((await send()).statusCode, 200);
  t.equal(b.hits.length, 0);
  await b.restart();
  await eventually(
    'b takes requests again',
    async () => {
      await send();
      return b.hits.length > 0;
    },
    15_000,
  );
  t.ok(a.hits.length >= 4);
});

t.test('a request that reached an instance is sent to another only when it is a read', async (t) => {
  const dropped = ['/api/v1/auth/verify', '/.well-known/jwks.json'];
  const { a, b, send } = await setup(t, {}, dropped);
  const verify = await send('/api/v1/auth/verify');
  t.equal(verify.statusCode, 503, 'a dropped POST is not repeated: it may have signed someone in');
  t.equal(a.hits.length + b.hits.length, 1, 'it reached one instance only');
  const jwks = await send('/.well-known/jwks.json', 'GET');
  t.equal(jwks.statusCode, 503);
  t.equal(a.hits.length + b.hits.length, 3, 'a dropped GET was tried on the second instance too');
});

t.test('an answer that trickles in is cut off at UPSTREAM_TIMEOUT_MS as a whole, not per silence', async (t) => {
  // Each byte comes well within the timeout of the one before it; the whole takes 7 s.
  const body = JSON.stringify({ instance: 'trickle', padding: 'x'.repeat(10) });
  const { send } = await gatewayFor(t, [await tricklingServer(t, body)], { UPSTREAM_TIMEOUT_MS: '1000' });
  const answer = await send();
  t.equal(answer.statusCode, 503, answer.body);
  t.equal(answer.json().code, 'service_unavailable');
});

t.test('a stopping gateway answers a request still waiting on an instance 503, then stops', async (t) => {
  const quiet = await silent(t);
  const referral = await instance(t, 'referral');
  const gateway = await buildApp(
    testConfig({
      AUTH_URLS: quiet.url,
      REFERRAL_URL: referral.url,
      GATEWAY_HEALTH_INTERVAL_MS: '0',
      UPSTREAM_TIMEOUT_MS: '60000',
    }),
  );
  await gateway.listen({ host: '127.0.0.1', port: 0 });
  const { port } = gateway.server.address() as net.AddressInfo;
  const client = net.connect({ host: '127.0.0.1', port });
  t.teardown(() => client.destroy());
  let received = '';
  client.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const ended = new Promise<string>((resolve) => {
    client.on('error', (error) => resolve(`error ${(error as NodeJS.ErrnoException).code}`));
    client.on('close', () => resolve('closed'));
  });
  const body = JSON.stringify({ phone: '+79123456789' });
  const head = ['POST /api/v1/auth/send-code HTTP/1.1', 'host: x', 'content-type: application/json'];
  client.write(`${[...head, `content-length: ${body.length}`].join('\r\n')}\r\n\r\n${body}`);
  await eventually(
    'the request to wait on the silent instance',
    () => poolsOf(gateway).auth.instances[0]!.pool.stats.running === 1,
    10_000,
  );

  // The instance would hold it for a minute; the drain cuts what is still open 1.5 s in.
  const drained = drainAndClose(gateway, 100, 1500).then(() => 'drained');
  const outcome = await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 30_000, 'still closing'))]);
  t.equal(outcome, 'drained', 'the gateway stopped without waiting for the instance');
  t.equal(await ended, 'closed', 'the client saw its connection closed, not reset');
  t.match(received, /^HTTP\/1\.1 503 /, received);
  t.match(received, /\r\nconnection: close\r\n/i);
  t.match(received, /"code":"service_unavailable"/);
  t.match(received, /This gateway is stopping; send the request again/);
});
