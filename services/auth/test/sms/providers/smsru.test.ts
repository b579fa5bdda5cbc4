import t, { type Test } from 'tap';
import { AppError } from '@refstack/shared/contracts';
import { startFakeSmsRu } from '@refstack/shared/testing';
import { SmsPermanentError, SmsRecipientError, SmsTransientError } from '../../../src/sms/providers/provider.js';
import { smsruProvider, smsruReceipts } from '../../../src/sms/providers/smsru.js';
import { checkTransportFailures, loginMessage, PHONE, refusal } from './provider-kit.js';

const API_ID = '0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9';

async function setup(t: Test, from?: string) {
  const fake = await startFakeSmsRu({ apiId: API_ID });
  t.teardown(() => fake.stop());
  return { fake, provider: smsruProvider({ apiId: API_ID, from, baseUrl: fake.url }) };
}

t.test('a message SMS.ru accepts: its sms_id, the exact text, digits without +', async (t) => {
  const { fake, provider } = await setup(t, 'Refstack');
  const message = loginMessage();
  const accepted = await provider.send(message, AbortSignal.timeout(5000));
  t.match(accepted, { providerMessageId: /^000000-\d+$/ });
  t.equal(fake.accepted.length, 1);
  t.match(fake.accepted[0], { providerMessageId: accepted.providerMessageId, to: PHONE, text: message.text });
  t.match(fake.accepted[0]?.params, { to: PHONE.slice(1), from: 'Refstack', json: '1' });
  t.notOk('ttl' in (fake.accepted[0]?.params ?? {}), 'no ttl: undelivered messages stay refundable');
  t.same(fake.violations, []);
});

t.test('numbers of other countries go as their international digits, also when shorter than 11', async (t) => {
  const { fake, provider } = await setup(t);
  // Saint Helena's mobile numbers have 8 digits in all, Norway's 10.
  for (const to of ['+29051234', '+4740123456']) {
    await provider.send(loginMessage({ to, country: 'ZZ' }), AbortSignal.timeout(5000));
  }
  t.same(
    fake.accepted.map((sms) => sms.params['to']),
    ['29051234', '4740123456'],
  );
  t.same(fake.violations, []);
});

t.test('a refusal of the number is permanent; the account, limits and SMS.ru itself are transient', async (t) => {
  const { fake, provider } = await setup(t);
  for (const code of [202, 207, 209, 215]) {
    fake.refuse(code);
    const error = await refusal(t, provider, loginMessage());
    t.type(error, SmsPermanentError, `${code}`);
    t.match((error as SmsPermanentError).reason, new RegExp(`^${code} `));
  }
  for (const code of [200, 201, 204, 206, 214, 220, 230, 231, 232, 233, 301, 500, 999]) {
    fake.refuse(code);
    const error = await refusal(t, provider, loginMessage());
    t.type(error, SmsTransientError, `${code}`);
    t.match((error as SmsTransientError).reason, new RegExp(`^${code} `));
    // SMS.ru's limits for one number say nothing of SMS.ru: they must not open its circuit.
    t.equal(error instanceof SmsRecipientError, code >= 230 && code <= 233, `${code}: this recipient only`);
  }
  fake.refuse(undefined);
  const wrongKey = smsruProvider({ apiId: 'another-api-id', from: undefined, baseUrl: fake.url });
  const auth = await refusal(t, wrongKey, loginMessage());
  t.type(auth, SmsTransientError, 'a wrong api_id (the real answer) is transient');
  t.equal((auth as SmsTransientError).reason, '200 wrong api_id');
  t.notMatch(auth.message, 'another-api-id');
  t.same(fake.violations, []);
});

t.test('HTTP 500, a hang, garbage and a dead port are transient and quote nothing secret', async (t) => {
  const { fake, provider } = await setup(t);
  await checkTransportFailures(t, fake, provider, [API_ID]);
});

t.test('receipts: the hash over the api_id and the data decides; statuses map to ours', async (t) => {
  const { fake } = await setup(t);
  const receipts = smsruReceipts({ apiId: API_ID, from: undefined, baseUrl: fake.url });
  const request = (receipt: { headers: Record<string, string>; body: string }) => ({
    url: '/webhooks/sms/smsru',
    headers: receipt.headers,
    body: Buffer.from(receipt.body),
  });
  t.same(receipts.verify(request(fake.receipt('000000-1', 103)), Date.now()).updates, [
    { providerMessageId: '000000-1', status: 'delivered' },
  ]);
  t.same(receipts.verify(request(fake.receipt('000000-1', 102)), Date.now()).updates, [
    { providerMessageId: '000000-1', status: 'sent' },
  ]);
  t.same(receipts.verify(request(fake.receipt('000000-1', 106)), Date.now()).updates, [
    { providerMessageId: '000000-1', status: 'failed', reason: '106 phone failure' },
  ]);
  t.same(receipts.verify(request(fake.receipt('000000-1', 101)), Date.now()).updates, [], 'still with SMS.ru');
  const signed = request(fake.receipt('000000-1', 103, { at: 1_800_000_000_000 }));
  t.equal(
    receipts.verify(signed, 0).replayKey,
    receipts.verify(signed, 0).replayKey,
    'the same callback, the same key',
  );
  t.equal(receipts.answer.body, '100');

  const refused = (body: string) => {
    const error = t.throws(() =>
      receipts.verify({ url: '/webhooks/sms/smsru', headers: {}, body: Buffer.from(body) }, 0),
    );
    t.type(error, AppError);
    t.equal((error as AppError).code, 'webhook_signature_invalid');
  };
  refused(fake.receipt('000000-1', 103, { apiId: 'not-ours' }).body);
  refused(signed.body.toString().replace(/&hash=[0-9a-f]+/, ''));
  refused(signed.body.toString().replace('103', '104'));
  refused(`${signed.body.toString()}&data%5B1%5D=sms_status%0A000000-2%0A103%0A1`);
  refused('');

  // The digest and nothing else: a suffix must not make the same receipt a new one.
  const body = signed.body.toString();
  const hash = /hash=([0-9a-f]+)/.exec(body)?.[1] ?? '';
  t.equal(hash.length, 64);
  for (const suffix of ['z', '%20', '00', '0', 'g', '%0A']) refused(body.replace(hash, `${hash}${suffix}`));
  refused(body.replace(hash, hash.slice(0, 62)));
  const upper = request({ headers: {}, body: body.replace(hash, hash.toUpperCase()) });
  t.equal(
    receipts.verify(upper, 0).replayKey,
    receipts.verify(signed, 0).replayKey,
    'the hash in capitals is the same receipt',
  );
});
