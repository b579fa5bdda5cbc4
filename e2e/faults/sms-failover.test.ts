import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loginCodeIn } from '@refstack/shared/contracts';
import {
  postReceipt,
  REPO_ROOT,
  startFakeSmsc,
  startFakeSmsRu,
  TestStack,
  type AcceptedSms,
  type FakeProviderServer,
} from '@refstack/shared/testing';

const SMSRU_API_ID = 'E2E0A1B2-C3D4-E5F6-0718-293A4B5C6D7E';
const SMSC = { login: 'refstack-e2e', password: 'e2e-password-0123456789' };
const TIMEOUT_MS = 1000;
const RESET_SECONDS = 2;

/** The worker's metric with these labels (each `name="value"`), summed as Prometheus would scrape it. */
async function metric(stack: TestStack, name: string, ...labels: string[]): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${stack.ports.SMS_WORKER_METRICS_PORT}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function setup(t: Test) {
  const smsru = await startFakeSmsRu({ apiId: SMSRU_API_ID });
  const smsc = await startFakeSmsc(SMSC);
  t.teardown(() => Promise.all([smsru.stop(), smsc.stop()]));
  const stack = await TestStack.create(t, {
    SMS_PROVIDERS: 'smsru,smsc',
    SMSRU_API_ID,
    SMSRU_BASE_URL: smsru.url,
    SMSC_LOGIN: SMSC.login,
    SMSC_PASSWORD: SMSC.password,
    SMSC_BASE_URL: smsc.url,
    SMS_PROVIDER_TIMEOUT_MS: String(TIMEOUT_MS),
    // Enough calls that each way of failing below reaches SMS.ru before its circuit opens.
    SMS_CIRCUIT_MIN_CALLS: '8',
    SMS_CIRCUIT_ERROR_PERCENT: '50',
    SMS_CIRCUIT_RESET_SECONDS: String(RESET_SECONDS),
  });
  await stack.startAll();
  return { stack, smsru, smsc };
}

/** Every message either fake accepted for `phone`. */
const acceptedFor = (phone: string, ...fakes: FakeProviderServer[]): AcceptedSms[] =>
  fakes.flatMap((fake) => fake.accepted.filter((m) => m.to === phone));

t.test('SMS failover in real processes: 500, hang, switched off, then back; each code arrives once', async (t) => {
  const { stack, smsru, smsc } = await setup(t);
  let n = 0;
  const phones: string[] = [];
  /** Asks for a code, waits for whichever provider takes it, signs in with it through the gateway. */
  async function signInThrough(expected: FakeProviderServer): Promise<AcceptedSms> {
    const phone = `+7912777${String(++n).padStart(4, '0')}`;
    phones.push(phone);
    t.equal((await stack.post('/api/v1/auth/send-code', { phone })).status, 200, `send-code ${phone}`);
    await stack.waitFor(() => acceptedFor(phone, smsru, smsc).length > 0, 20_000, `the code for ${phone}`);
    const [message] = acceptedFor(phone, smsru, smsc);
    t.ok(expected.accepted.includes(message!), `${phone}: carried by the expected provider`);
    const code = loginCodeIn(message!.text);
    const verified = await stack.post('/api/v1/auth/verify', { phone, code });
    t.equal(verified.status, 200, `${phone}: the code signs in`);
    return message!;
  }

  await signInThrough(smsru);

  smsru.behaviour = 'http500';
  const before500 = smsru.requests;
  for (let i = 0; i < 3; i++) await signInThrough(smsc);
  t.equal(smsru.requests - before500, 3, 'SMS.ru was asked for each and answered 500');

  smsru.behaviour = 'hang';
  const beforeHang = smsru.requests;
  const hung = Date.now();
  for (let i = 0; i < 2; i++) await signInThrough(smsc);
  t.equal(smsru.requests - beforeHang, 2, 'SMS.ru was asked for each and never answered');
  t.ok(Date.now() - hung >= 2 * TIMEOUT_MS, 'each waited for the provider timeout, no longer than needed');

  await smsru.stop();
  const openLine = stack.waitForLine(/sms provider circuit open/, 30_000);
  for (let i = 0; i < 3; i++) await signInThrough(smsc);
  const opened = await openLine;
  t.match(opened, /"provider":"smsru"/, 'the circuit of SMS.ru opened, with a log line');
  t.equal(await metric(stack, 'sms_provider_circuit_state', 'provider="smsru"'), 2, 'and its gauge says open');
  await signInThrough(smsc);
  t.ok(
    (await metric(stack, 'sms_provider_attempts_total', 'outcome="circuit_open"', 'provider="smsru"')) >= 1,
    'while open, SMS.ru is skipped without a call',
  );

  // Back on the same port, answering again: after the reset time one trial call closes the circuit.
  smsru.behaviour = 'ok';
  await smsru.start();
  const closedLine = stack.waitForLine(/sms provider circuit closed/, 30_000);
  // The breaker lets one trial call through once its reset time has passed since it last opened.
  await stack.waitFor(
    async () => (await metric(stack, 'sms_provider_circuit_state', 'provider="smsru"')) === 1,
    30_000 + RESET_SECONDS * 1000,
    'the circuit of SMS.ru to be half-open',
  );
  await signInThrough(smsru);
  t.match(await closedLine, /"provider":"smsru"/, 'the circuit closed, with a log line');
  t.equal(await metric(stack, 'sms_provider_circuit_state', 'provider="smsru"'), 0);

  for (const phone of phones) {
    t.equal(acceptedFor(phone, smsru, smsc).length, 1, `${phone}: exactly one message was accepted`);
  }
  t.same([...smsru.violations, ...smsc.violations], [], 'no request a real provider would refuse');
  t.equal(
    await metric(stack, 'sms_sent_total', 'provider="smsc"'),
    smsc.accepted.length,
    'sms_sent_total counts what SMSC accepted',
  );
});

t.test('a delivery receipt through the gateway updates the status; the operator sees the history', async (t) => {
  const { stack, smsru } = await setup(t);
  const phone = '+79127770100';
  await stack.post('/api/v1/auth/send-code', { phone });
  await stack.waitFor(() => smsru.accepted.length === 1, 20_000, 'the message at SMS.ru');
  const smsId = smsru.accepted[0]!.providerMessageId;
  const url = `${stack.url}/webhooks/sms/smsru`;

  const forged = await postReceipt(url, smsru.receipt(smsId, 103, { apiId: 'not-the-api-id' }));
  t.equal(forged.status, 403, 'a receipt signed with another key is refused');
  const delivered = smsru.receipt(smsId, 103);
  const taken = await postReceipt(url, delivered);
  t.same(taken, { status: 200, body: '100' }, 'SMS.ru gets the answer it expects');
  t.same(
    await postReceipt(url, delivered),
    { status: 200, body: '100' },
    'the same receipt again is answered as taken, so that SMS.ru stops resending it',
  );

  const cli = await promisify(execFile)('pnpm', ['--silent', 'sms', 'messages', phone], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...stack.env },
  });
  t.match(cli.stdout, new RegExp(`otp {2}delivered via smsru \\(${smsId}\\)`), 'the listing shows the status');
  t.match(cli.stdout, /queued\n.*sent smsru\n.*delivered smsru/, 'and each step');
  const code = loginCodeIn(smsru.accepted[0]!.text);
  t.ok(code && !cli.stdout.includes(code), 'never the code');
});
