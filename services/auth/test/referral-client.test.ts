import t from 'tap';
import { AppError } from '@refstack/shared/contracts';
import { eventually, tricklingServer } from '@refstack/shared/testing';
import { createReferralClient } from '../src/referral-client.js';
import { INTERNAL_TOKEN, QUIET, startReferralStandIn } from './auth-test-app.js';

const phone = (n: number) => `+7912000${String(n).padStart(4, '0')}`;

t.test('a call that finds every connection to referral busy is a 503 and never reaches referral', async (t) => {
  const referral = await startReferralStandIn(t);
  const client = createReferralClient({
    bases: [referral.url],
    internalToken: INTERNAL_TOKEN,
    log: QUIET,
    probeIntervalMs: 0,
    ejectMs: 10_000,
    referralTimeoutMs: 60_000,
  });
  t.teardown(() => client.close());
  let release = () => {};
  referral.hold.until = new Promise<void>((resolve) => (release = resolve));

  // Each holds one of the client's 32 connections, waiting up to a minute for its answer.
  let answered = 0;
  const holding = Array.from({ length: 32 }, (_, i) =>
    client.signIn({ phone: phone(i) }, `held-${i}`, 60_000).finally(() => (answered += 1)),
  );
  await eventually('32 sign-ins hold every connection', () => referral.hold.arrived === 32, 30_000);

  const late = await client.signIn({ phone: phone(9999) }, 'late', 60_000).catch((error: unknown) => error);
  t.ok(late instanceof AppError && late.code === 'service_unavailable', String(late));
  t.equal(answered, 0, 'while the calls that hold the connections still wait');

  referral.hold.until = undefined;
  release();
  t.equal((await Promise.all(holding)).length, 32, 'the held calls are answered once referral is');
  // A call made after the dropped one is queued behind it: once it is answered, the dropped one
  // has had every chance to be written.
  t.equal((await client.signIn({ phone: phone(8888) }, 'after', 60_000)).user.phone, phone(8888));
  t.notOk(
    referral.calls.some((call) => call.phone === phone(9999)),
    'the call given up on was not sent when a connection freed up',
  );
  t.equal(referral.hold.arrived, 33, 'the 32 held calls and the one after, nothing else');
});

t.test('an answer from referral that trickles in is given up at the call timeout as a whole', async (t) => {
  // A whole sign-in answer, its last 40 bytes a byte every 200 ms: each well within the timeout,
  // the whole 8 s.
  const user = {
    id: '1',
    phone: phone(1),
    invite_code: 'ABC123',
    activated_invite_code: null,
    invited_users: [],
    invited_count: 0,
    first_name: null,
    last_name: null,
    email: null,
    created_at: new Date().toISOString(),
  };
  const url = await tricklingServer(t, JSON.stringify({ user, created: true, roles: [] }), 40);
  const client = createReferralClient({
    bases: [url],
    internalToken: INTERNAL_TOKEN,
    log: QUIET,
    probeIntervalMs: 0,
    ejectMs: 10_000,
    referralTimeoutMs: 1000,
  });
  t.teardown(() => client.close());
  const outcome = await client.signIn({ phone: phone(1) }, 'trickled', 1000).catch((error: unknown) => error);
  t.ok(outcome instanceof AppError && outcome.code === 'service_unavailable', String(outcome));
});
