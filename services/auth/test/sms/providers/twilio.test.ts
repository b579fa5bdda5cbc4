import t, { type Test } from 'tap';
import { type AppError } from '@refstack/shared/contracts';
import { startFakeTwilio } from '@refstack/shared/testing';
import { SmsPermanentError, SmsTransientError } from '../../../src/sms/providers/provider.js';
import { twilioProvider, twilioReceipts, twilioSignature } from '../../../src/sms/providers/twilio.js';
import { checkTransportFailures, loginMessage, PHONE, refusal } from './provider-kit.js';

const SID = `AC${'0123456789abcdef'.repeat(2)}`;
const TOKEN = 'twilio-auth-token-0123456789abcd';
const CALLBACK = 'https://api.example.com/webhooks/sms/twilio';

async function setup(t: Test, via: { from?: string; messagingServiceSid?: string } = { from: '+15005550006' }) {
  const fake = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
  t.teardown(() => fake.stop());
  const config = {
    accountSid: SID,
    authToken: TOKEN,
    from: via.from,
    messagingServiceSid: via.messagingServiceSid,
    baseUrl: fake.url,
  };
  return { fake, config, provider: twilioProvider(config, CALLBACK) };
}

t.test("the signature algorithm reproduces Twilio's documented example", async (t) => {
  const params = new URLSearchParams({
    Digits: '1234',
    To: '+18005551212',
    From: '+14158675310',
    Caller: '+14158675310',
    CallSid: 'CA1234567890ABCDE',
  });
  t.equal(
    twilioSignature('12345', 'https://example.com/myapp.php?foo=1&bar=2', params),
    'L/OH5YylLD5NRKLltdqwSvS0BnU=',
  );
});

t.test(
  'a message Twilio accepts: its sid, the exact text, E.164, the callback and a validity that ends with the code',
  async (t) => {
    const { fake, provider } = await setup(t);
    const message = loginMessage({ expiresAt: Date.now() + 120_000 });
    const accepted = await provider.send(message, AbortSignal.timeout(5000));
    t.match(accepted, { providerMessageId: /^SM[0-9a-f]{32}$/ });
    t.match(fake.accepted[0], { to: PHONE, text: message.text, callbackUrl: CALLBACK });
    const validity = Number(fake.accepted[0]?.params['ValidityPeriod']);
    t.ok(validity > 100 && validity <= 120, `ValidityPeriod ${validity} s`);
    t.equal(fake.accepted[0]?.params['From'], '+15005550006');
    t.same(fake.violations, []);

    const service = await setup(t, { messagingServiceSid: `MG${'f'.repeat(32)}` });
    await service.provider.send(loginMessage(), AbortSignal.timeout(5000));
    t.match(service.fake.accepted[0]?.params, { MessagingServiceSid: `MG${'f'.repeat(32)}` });
    t.notOk('From' in (service.fake.accepted[0]?.params ?? {}));
    t.same(service.fake.violations, []);
  },
);

t.test(
  'a bad or opted-out number is permanent; account, geo, sender, rate and Twilio errors are transient',
  async (t) => {
    const { fake, provider, config } = await setup(t);
    for (const code of [21211, 21614, 21610, 21635]) {
      fake.refuse(code);
      const error = await refusal(t, provider, loginMessage());
      t.type(error, SmsPermanentError, `${code}`);
      t.match((error as SmsPermanentError).reason, new RegExp(`^${code} `));
    }
    for (const code of [21408, 21606, 21612, 20429, 20503, 30001]) {
      fake.refuse(code);
      t.type(await refusal(t, provider, loginMessage()), SmsTransientError, `${code}`);
    }
    fake.refuse(undefined);
    const auth = await refusal(
      t,
      twilioProvider({ ...config, authToken: 'wrong-token-000000000000' }, CALLBACK),
      loginMessage(),
    );
    t.type(auth, SmsTransientError, 'wrong credentials (401, 20003) are transient');
    t.equal((auth as SmsTransientError).reason, '20003 (HTTP 401)');
    t.notMatch(auth.message, 'wrong-token');
  },
);

t.test('HTTP 500, a hang, garbage and a dead port are transient and quote nothing secret', async (t) => {
  const { fake, provider } = await setup(t);
  await checkTransportFailures(t, fake, provider, [TOKEN]);
});

t.test('status callbacks: signed for the public URL with the auth token, or refused', async (t) => {
  const { fake, config } = await setup(t);
  const receipts = twilioReceipts(config, 'https://api.example.com');
  const request = (receipt: { headers: Record<string, string>; body: string }, url = '/webhooks/sms/twilio') => ({
    url,
    headers: receipt.headers,
    body: Buffer.from(receipt.body),
  });
  const sid = `SM${'1'.repeat(32)}`;
  t.same(receipts.verify(request(fake.receipt(sid, 'delivered', { url: CALLBACK })), 0).updates, [
    { providerMessageId: sid, status: 'delivered' },
  ]);
  t.same(receipts.verify(request(fake.receipt(sid, 'undelivered', { url: CALLBACK, errorCode: '30003' })), 0).updates, [
    { providerMessageId: sid, status: 'failed', reason: '30003 unreachable handset' },
  ]);
  t.same(receipts.verify(request(fake.receipt(sid, 'sending', { url: CALLBACK })), 0).updates, [], 'still at Twilio');
  const withQuery = fake.receipt(sid, 'sent', { url: `${CALLBACK}?a=1` });
  t.same(receipts.verify(request(withQuery, '/webhooks/sms/twilio?a=1'), 0).updates, [
    { providerMessageId: sid, status: 'sent' },
  ]);

  const refused = (req: ReturnType<typeof request>, receiptsOf = receipts) => {
    const error = t.throws(() => receiptsOf.verify(req, 0));
    t.equal((error as AppError).code, 'webhook_signature_invalid');
  };
  refused(request(fake.receipt(sid, 'delivered', { url: CALLBACK, authToken: 'another-token' })));
  refused(request(fake.receipt(sid, 'delivered', { url: 'https://evil.example.com/webhooks/sms/twilio' })));
  refused(request(withQuery), receipts);
  const tampered = fake.receipt(sid, 'failed', { url: CALLBACK });
  refused(request({ ...tampered, body: tampered.body.replace('failed', 'delivered') }));
  refused(request({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: tampered.body }));
  refused(request(fake.receipt(sid, 'delivered', { url: CALLBACK })), twilioReceipts(config, undefined));
  const signed = request(fake.receipt(sid, 'delivered', { url: CALLBACK }));
  t.equal(receipts.verify(signed, 0).replayKey, receipts.verify(signed, 0).replayKey);
});
