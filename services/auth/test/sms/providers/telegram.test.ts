import t, { type Test } from 'tap';
import { type AppError } from '@refstack/shared/contracts';
import { startFakeTelegramGateway } from '@refstack/shared/testing';
import { SmsPermanentError, SmsRecipientError, SmsTransientError } from '../../../src/sms/providers/provider.js';
import { telegramGatewayProvider, telegramReceipts } from '../../../src/sms/providers/telegram.js';
import { checkTransportFailures, loginMessage, PHONE, refusal } from './provider-kit.js';

const TOKEN = 'AAH-telegram-gateway-token-0123456789';
const CALLBACK = 'https://api.example.com/webhooks/sms/telegram';

async function setup(t: Test) {
  const fake = await startFakeTelegramGateway({ token: TOKEN });
  t.teardown(() => fake.stop());
  const config = { token: TOKEN, baseUrl: fake.url };
  return { fake, config, provider: telegramGatewayProvider(config, CALLBACK) };
}

t.test('a code Telegram accepts: its request_id; the code itself, E.164, a ttl that ends with the code', async (t) => {
  const { fake, provider } = await setup(t);
  const accepted = await provider.send(loginMessage({ expiresAt: Date.now() + 300_000 }), AbortSignal.timeout(5000));
  t.match(accepted, { providerMessageId: /^[0-9a-f]{16}$/ });
  t.match(fake.accepted[0], { to: PHONE, text: '042137', callbackUrl: CALLBACK });
  t.match(fake.accepted[0]?.params, { payload: '4711', ttl: /^(299|300)$/ });
  await provider.send(loginMessage({ expiresAt: Date.now() + 5000 }), AbortSignal.timeout(5000));
  t.equal(fake.accepted[1]?.params['ttl'], '30', "a short remaining life is raised to Telegram's least ttl");
  t.same(fake.violations, []);
});

t.test('Telegram carries login codes only', async (t) => {
  const { provider } = await setup(t);
  t.ok(provider.carries(loginMessage()));
  t.notOk(provider.carries(loginMessage({ kind: 'invite_activated', code: undefined, text: 'Someone activated…' })));
  t.notOk(provider.carries(loginMessage({ code: undefined })), 'a pre-rendered code message has no code to hand over');
});

t.test('an invalid number is permanent; no Telegram, the account and limits are transient', async (t) => {
  const { fake, provider, config } = await setup(t);
  fake.refuse('PHONE_NUMBER_INVALID');
  t.type(await refusal(t, provider, loginMessage()), SmsPermanentError);
  for (const error of [
    'PHONE_NUMBER_NOT_FOUND',
    'PHONE_NUMBER_NOT_AVAILABLE',
    'BALANCE_NOT_ENOUGH',
    'FLOOD_WAIT_42',
    'SOMETHING_NEW',
  ]) {
    fake.refuse(error);
    const refused = await refusal(t, provider, loginMessage());
    t.type(refused, SmsTransientError, `${error}: the SMS providers after Telegram still try`);
    t.equal((refused as SmsTransientError).reason, error);
    t.equal(
      refused instanceof SmsRecipientError,
      error.startsWith('PHONE_NUMBER_'),
      `${error}: ${error.startsWith('PHONE_NUMBER_') ? 'this recipient only' : 'Telegram itself'}`,
    );
  }
  fake.refuse(undefined);
  const auth = await refusal(t, telegramGatewayProvider({ ...config, token: 'wrong-token' }, CALLBACK), loginMessage());
  t.equal((auth as SmsTransientError).reason, 'ACCESS_TOKEN_INVALID');
  t.notMatch(auth.message, 'wrong-token');
  t.same(fake.violations, []);
});

t.test('HTTP 500, a hang, garbage and a dead port are transient and quote nothing secret', async (t) => {
  const { fake, provider } = await setup(t);
  await checkTransportFailures(t, fake, provider, [TOKEN, '042137']);
});

t.test('reports: signed with the token hash over timestamp and body, at most five minutes old', async (t) => {
  const { fake, config } = await setup(t);
  const receipts = telegramReceipts(config);
  const now = Date.now();
  const request = (receipt: { headers: Record<string, string>; body: string }) => ({
    url: '/webhooks/sms/telegram',
    headers: receipt.headers,
    body: Buffer.from(receipt.body),
  });
  const at = Math.floor(now / 1000);
  t.same(receipts.verify(request(fake.receipt('r1', 'delivered', { timestamp: at })), now).updates, [
    { providerMessageId: 'r1', status: 'delivered' },
  ]);
  t.same(receipts.verify(request(fake.receipt('r1', 'read', { timestamp: at })), now).updates, [
    { providerMessageId: 'r1', status: 'delivered' },
  ]);
  t.same(receipts.verify(request(fake.receipt('r1', 'expired', { timestamp: at })), now).updates, [
    { providerMessageId: 'r1', status: 'failed', reason: 'expired' },
  ]);
  t.doesNotThrow(() => receipts.verify(request(fake.receipt('r1', 'sent', { timestamp: at - 290 })), now), '290 s old');

  const refused = (req: ReturnType<typeof request>) => {
    const error = t.throws(() => receipts.verify(req, now));
    t.equal((error as AppError).code, 'webhook_signature_invalid');
  };
  refused(request(fake.receipt('r1', 'delivered', { timestamp: at - 301 })));
  refused(request(fake.receipt('r1', 'delivered', { timestamp: at + 301 })));
  refused(request(fake.receipt('r1', 'delivered', { token: 'another-token', timestamp: at })));
  const signed = fake.receipt('r1', 'expired', { timestamp: at });
  refused(request({ ...signed, body: signed.body.replace('expired', 'delivered') }));
  refused(request({ headers: { 'content-type': 'application/json' }, body: signed.body }));
  refused(request({ headers: { ...signed.headers, 'x-request-timestamp': String(at - 1) }, body: signed.body }));
  t.equal(receipts.verify(request(signed), now).replayKey, receipts.verify(request(signed), now).replayKey);
});
