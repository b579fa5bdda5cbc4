// The stack as an operator runs it: the project's docker-compose.yml, built and started on a
// container engine, driven through the gateway's published port only. `pnpm test:compose` picks
// the engine (scripts/test-compose.mjs) and passes it in COMPOSE_ENGINE.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { eventually, freePort, LineLog } from '@refstack/shared/testing';
import { BUILT, ComposeStack, SECOND_INSTANCES, SERVICES, type Engine, type Service } from './compose-stack.js';

const engine = process.env['COMPOSE_ENGINE'] as Engine | undefined;
if (engine !== 'docker' && engine !== 'podman')
  throw new Error('run this through `pnpm test:compose`, which picks the container engine');

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

interface Tokens {
  access: string;
  refresh: string;
}
interface Profile {
  phone: string;
  invite_code: string;
  activated_invite_code: string | null;
  invited_users: string[];
  invited_count: number;
}

/** What an operator gives compose: the four secrets of .env, generated the way .env.example shows. */
async function operatorEnv(): Promise<Record<string, string>> {
  const hex = () => randomBytes(32).toString('hex');
  return {
    ...(process.env as Record<string, string>),
    INTERNAL_TOKEN: hex(),
    OTP_HMAC_SECRET: hex(),
    POSTGRES_PASSWORD: hex(),
    JWT_PRIVATE_KEY: generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString(),
    GATEWAY_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
  };
}

/** A JSON request to the stack's published gateway port. */
function caller(stack: ComposeStack) {
  return async <T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    access?: string,
  ): Promise<{ status: number; json: T }> => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (access) headers['authorization'] = `Bearer ${access}`;
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as T };
  };
}

/** Every SMS line the workers' containers printed: the operator's `compose logs sms-worker`. */
function smsLines(stack: ComposeStack, workers: readonly Service[]): LineLog {
  // Read as the process harness reads a worker's output, from the container's log each time.
  const log = new LineLog();
  for (const worker of workers) for (const line of stack.logs(worker).split('\n')) log.pushFrom(worker, line);
  return log;
}

/** The code sent to `phone`, from whichever worker printed it. */
async function smsCode(stack: ComposeStack, workers: readonly Service[], phone: string): Promise<string> {
  let code: string | undefined;
  const printed = () => (code = smsLines(stack, workers).smsCode(phone)) !== undefined;
  await eventually(`an SMS to ${phone} in the workers' logs`, printed, 30_000, 250).catch((error: Error) => {
    throw new Error(`${error.message}\n${workers.map((w) => stack.logs(w).slice(-2000)).join('\n')}`);
  });
  return code as string;
}

type Answer<T> = { status: number; json: T };

/** An answer's problem, for an assertion's message; nothing for a 200 (whose body holds tokens). */
const problem = (answer: Answer<unknown>) => (answer.status === 200 ? '' : `: ${JSON.stringify(answer.json)}`);

/**
 * Asks again while the stack answers 503 with `service_unavailable` (retry), up to a deadline, and
 * says in the test's output how long that lasted. Any other answer ends the wait. When the last
 * answer is not a 200, the services' recent log lines go into the output too, so a failure on a
 * machine nobody can look at names its cause.
 */
function settler(t: Test, stack: ComposeStack, deadlineMs = 60_000) {
  return async <T>(what: string, request: () => Promise<Answer<T>>): Promise<Answer<T>> => {
    const started = Date.now();
    let answer = await request();
    const retryable = () => answer.status === 503 && (answer.json as { code?: string }).code === 'service_unavailable';
    const first = answer;
    let retries = 0;
    while (retryable() && Date.now() - started < deadlineMs) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      answer = await request();
      retries += 1;
    }
    if (retries > 0)
      t.comment(
        `${what}: 503 at first (${JSON.stringify(first.json)}), ` +
          `${answer.status} after ${retries} more tries in ${seconds(Date.now() - started)}`,
      );
    // A 503 on a healthy stack names its cause only in the services' logs.
    if (answer.status !== 200 || retries > 0)
      for (const service of ['gateway', 'auth', 'referral'] as const)
        t.comment(`${service}'s last lines:\n${stack.logs(service).slice(-3000)}`);
    return answer;
  };
}

t.test('docker-compose.yml brought up for real: journey, durability across down/up, images', async (t) => {
  const project = `refstackct${randomBytes(4).toString('hex')}`;
  const stack = new ComposeStack(engine, project, await operatorEnv());
  // Runs when a step fails too; the last assertion checks it left nothing behind.
  t.teardown(() => stack.teardown());
  t.comment(`engine ${engine}, project ${project}, gateway on ${stack.url}`);

  let started = Date.now();
  stack.build();
  t.comment(`images built in ${seconds(Date.now() - started)}`);
  const sizes = stack.imageSizes();
  const base = stack.baseImageSize();
  t.comment(
    `image sizes: ${BUILT.map((s) => `${s} ${megabytes(sizes[s] ?? 0)}`).join(', ')} ` +
      `(each is node:22-slim at ${megabytes(base)} plus its own layers)`,
  );
  for (const service of BUILT)
    t.ok(
      (sizes[service] ?? 0) - base < 100e6,
      `${service} adds ${megabytes((sizes[service] ?? 0) - base)} to the base: ` +
        'its build output and production dependencies only',
    );
  for (const service of BUILT) {
    t.equal(stack.imageUser(service), 'node', `${service} runs as the unprivileged node user`);
    const packages = stack.installedPackages(service);
    t.ok(
      packages.some((name) => name.startsWith('fastify@')),
      `${service} image holds its dependencies`,
    );
    t.same(
      packages.filter((name) => /^(typescript|tsx|tap|@tapjs|eslint|@types|fast-check|playwright)/.test(name)),
      [],
      `${service} image holds no development dependencies`,
    );
  }

  started = Date.now();
  await stack.up();
  const firstHealthy = Date.now() - started;
  t.comment(`time to healthy (first start, empty volumes): ${seconds(firstHealthy)}`);
  for (const service of SERVICES) t.ok(await stack.passesHealthcheck(service), `${service} passes its own healthcheck`);

  const ports = stack.publishedPorts();
  const publishing = Object.entries(ports).filter(([, published]) => published !== '');
  t.same(
    publishing.map(([name]) => name),
    [stack.container('gateway')],
    `only the gateway publishes a port: ${JSON.stringify(ports)}`,
  );

  const call = caller(stack);
  // A stack just brought up may answer 503 (retry) for a moment; the output says when it did, with
  // the services' log lines, and a 503 keeps the code, so the sign-in may be asked again.
  const settled = settler(t, stack);
  const signIn = async (phone: string): Promise<{ user: Profile; tokens: Tokens }> => {
    t.equal((await call('POST', '/api/v1/auth/send-code', { phone })).status, 200, `send-code ${phone}`);
    const code = await smsCode(stack, ['sms-worker'], phone);
    let asked = 0;
    const verified = await settled(`verify ${phone}`, () => {
      asked += 1;
      return call<{ user: Profile; tokens: Tokens; created: boolean }>('POST', '/api/v1/auth/verify', { phone, code });
    });
    t.equal(verified.status, 200, `verify ${phone} with the code from the worker's log${problem(verified)}`);
    // A 503 may come after referral created the user (auth's deadline passed on the way back), and
    // the sign-in asked again then finds it.
    if (asked === 1) t.equal(verified.json.created, true, 'a new user');
    else t.type(verified.json.created, 'boolean', 'asked again: the user may have been created by the first');
    return verified.json;
  };

  // The login journey through the published gateway port.
  const inviter = await signIn('+79161110001');
  const invitee = await signIn('+79161110002');
  t.match((await call<Profile>('GET', '/api/v1/profile', undefined, inviter.tokens.access)).json, {
    phone: '+79161110001',
    invite_code: inviter.user.invite_code,
    invited_count: 0,
  });
  const activated = await call<Profile>(
    'PUT',
    '/api/v1/profile/invite',
    { invite_code: inviter.user.invite_code },
    invitee.tokens.access,
  );
  t.equal(activated.status, 200, 'the invitee activates the inviter’s code');
  t.equal(activated.json.activated_invite_code, inviter.user.invite_code);
  t.match((await call<Profile>('GET', '/api/v1/profile', undefined, inviter.tokens.access)).json, {
    invited_count: 1,
    invited_users: ['+79161110002'],
  });
  // The operator's commands, as the README gives them for compose: inside the running containers.
  const adminList = () => call('GET', '/api/v1/users', undefined, inviter.tokens.access);
  t.equal((await adminList()).status, 403, 'the admin list: not an admin yet');
  t.match(
    stack.exec('referral', ['node', 'dist/cli/admin.js', 'grant', '+79161110001']),
    /\+79161110001 is now an admin/,
  );
  t.equal((await adminList()).status, 200, 'an admin, made inside the running referral container');
  const messages = JSON.parse(
    stack.exec('auth', ['node', 'dist/cli/sms-messages.js', 'messages', '+79161110002', '--json']),
  ) as unknown;
  t.match(messages, [{ to: '+79161110002', status: 'sent', provider: 'console' }], "the invitee's SMS, from auth");
  const docs = await call<{ openapi: string; paths: Record<string, unknown> }>('GET', '/docs/json');
  t.equal(docs.status, 200);
  t.match(docs.json, { openapi: /^3\./ });
  t.ok(
    '/api/v1/profile' in docs.json.paths && '/api/v1/auth/send-code' in docs.json.paths,
    '/docs/json describes both services',
  );

  // A message accepted while the worker is stopped waits in Redis.
  stack.stop(['sms-worker']);
  t.equal(stack.exitCode('sms-worker'), 0, 'the SMS worker stopped on SIGTERM by itself');
  const queuedPhone = '+79161110003';
  t.equal(
    (await call('POST', '/api/v1/auth/send-code', { phone: queuedPhone })).status,
    200,
    'send-code accepted while the worker is stopped',
  );

  // Every service stops on SIGTERM by itself well within the 10 s grace (exit 0, not a SIGKILL's 137).
  started = Date.now();
  stack.stop();
  const stopMs = Date.now() - started;
  t.comment(`every service stopped in ${seconds(stopMs)}`);
  for (const service of SERVICES) t.equal(stack.exitCode(service), 0, `${service} exited 0 on SIGTERM`);
  t.ok(stopMs < 30_000, 'all six stopped one after another without waiting out a grace period');

  stack.down();
  t.same(stack.leftovers().containers, [], '`down` removed the containers');
  t.ok(stack.leftovers().volumes.length >= 2, 'and kept the volumes');

  started = Date.now();
  await stack.up();
  t.comment(`time to healthy (restart on existing volumes): ${seconds(Date.now() - started)}`);

  // As at the first start, a 503 (retry) is not what these checks are about; a lost session (401)
  // or user is.
  const refreshed = await settled('refresh', () =>
    call<Tokens>('POST', '/api/v1/auth/refresh', { refresh: inviter.tokens.refresh }),
  );
  t.equal(
    refreshed.status,
    200,
    `the refresh session survived (Redis append-only file on a volume)${problem(refreshed)}`,
  );
  const profile = await settled('profile', () =>
    call<Profile>('GET', '/api/v1/profile', undefined, refreshed.json.access),
  );
  t.match(
    profile.json,
    { phone: '+79161110001', invite_code: inviter.user.invite_code, invited_count: 1, invited_users: ['+79161110002'] },
    'the users and their invite relation survived (Postgres volume)',
  );
  const queuedCode = await smsCode(stack, ['sms-worker'], queuedPhone);
  t.pass('the restarted worker printed the message queued while it was stopped');
  // A 503 keeps the code, so the sign-in may be asked again.
  const queuedSignIn = await settled('verify', () =>
    call('POST', '/api/v1/auth/verify', { phone: queuedPhone, code: queuedCode }),
  );
  t.equal(queuedSignIn.status, 200, `and that code signs in${problem(queuedSignIn)}`);

  stack.teardown();
  t.same(
    stack.leftovers(),
    { containers: [], networks: [], volumes: [] },
    'teardown left no containers, networks or volumes',
  );
});

t.test('docker-compose.scale.yml: two of auth, referral and the SMS worker, signed in through', async (t) => {
  const project = `refstackcs${randomBytes(4).toString('hex')}`;
  const stack = new ComposeStack(engine, project, await operatorEnv(), [
    'docker-compose.yml',
    'docker-compose.scale.yml',
  ]);
  t.teardown(() => stack.teardown());
  // The images were built by the test above (or by the operator's `up --build`).
  const started = Date.now();
  await stack.up();
  t.comment(`nine services healthy in ${seconds(Date.now() - started)}`);
  for (const service of [...SERVICES, ...SECOND_INSTANCES])
    t.ok(await stack.passesHealthcheck(service), `${service} passes its own healthcheck`);

  const call = caller(stack);
  const workers = ['sms-worker', 'sms-worker-2'] as const;
  // As after the restart above: a stack just brought up may answer 503 (retry) for a moment, and a
  // 503 keeps the code, so the sign-in may be asked again.
  const settled = settler(t, stack);
  const signIn = async (phone: string) => {
    t.equal((await call('POST', '/api/v1/auth/send-code', { phone })).status, 200, `send-code ${phone}`);
    const code = await smsCode(stack, workers, phone);
    const verified = await settled(`verify ${phone}`, () => call('POST', '/api/v1/auth/verify', { phone, code }));
    t.equal(verified.status, 200, `verify ${phone}${problem(verified)}`);
    return verified.json as { user: Profile; tokens: Tokens };
  };

  const phones = Array.from({ length: 6 }, (_, i) => `+7916222000${i}`);
  const users = [];
  for (const phone of phones) users.push(await signIn(phone));
  const [inviter, invitee] = users;
  const activated = await call(
    'PUT',
    '/api/v1/profile/invite',
    { invite_code: inviter!.user.invite_code },
    invitee!.tokens.access,
  );
  t.equal(activated.status, 200, 'an activation through the balanced gateway');
  for (let i = 0; i < 4; i += 1) {
    const profile = await call('GET', '/api/v1/profile', undefined, inviter!.tokens.access);
    t.match(profile.json, { invited_count: 1, invited_users: [phones[1]] }, `profile read ${i + 1} sees it`);
  }

  const served = (service: Service, path: string) => stack.logs(service).includes(`"url":"${path}"`);
  // Round-robin alternates: a code sent through one instance is often verified through the other.
  const signInOf = (service: Service) =>
    served(service, '/api/v1/auth/send-code') || served(service, '/api/v1/auth/verify');
  t.ok(signInOf('auth') && signInOf('auth-2'), 'both auth instances served the sign-ins');
  t.ok(
    served('referral', '/api/v1/profile') && served('referral-2', '/api/v1/profile'),
    'both referral instances answered profile reads',
  );
  const sms = smsLines(stack, workers).sms;
  for (const phone of phones)
    t.equal(sms.filter((m) => m.to === phone).length, 1, `the SMS to ${phone} came out of exactly one worker`);
  t.comment(`SMS per worker: ${workers.map((w) => `${w} ${sms.filter((m) => m.from === w).length}`).join(', ')}`);

  // The first referral instance stops: the gateway and auth go on with the second.
  stack.stop(['referral']);
  const after = await signIn('+79162220100');
  t.ok(after.user.invite_code, 'a sign-in with one referral instance stopped (auth calls the other)');
  for (let i = 0; i < 4; i += 1)
    t.equal(
      (await call('GET', '/api/v1/profile', undefined, inviter!.tokens.access)).status,
      200,
      `profile read ${i + 1} with one referral instance stopped`,
    );

  stack.teardown();
  t.same(stack.leftovers(), { containers: [], networks: [], volumes: [] }, 'teardown left nothing behind');
});
