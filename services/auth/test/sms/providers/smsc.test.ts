import t, { type Test } from 'tap';
import { startFakeSmsc } from '@refstack/shared/testing';
import { SmsPermanentError, SmsTransientError } from '../../../src/sms/providers/provider.js';
import { smscProvider } from '../../../src/sms/providers/smsc.js';
import { checkTransportFailures, loginMessage, PHONE, refusal } from './provider-kit.js';

const LOGIN = 'refstack';
const PASSWORD = 'smsc-password-0123456789';

async function setup(t: Test, sender?: string) {
  const fake = await startFakeSmsc({ login: LOGIN, password: PASSWORD });
  t.teardown(() => fake.stop());
  return { fake, provider: smscProvider({ login: LOGIN, password: PASSWORD, sender, baseUrl: fake.url }) };
}

t.test('a message SMSC accepts: our id back, the exact text in UTF-8, E.164 uncorrected', async (t) => {
  const { fake, provider } = await setup(t, 'Refstack');
  const message = loginMessage();
  t.same(await provider.send(message, AbortSignal.timeout(5000)), { providerMessageId: '4711' });
  t.match(fake.accepted[0], { to: PHONE, text: message.text });
  t.match(fake.accepted[0]?.params, { phones: PHONE, sender: 'Refstack', fmt: '3', charset: 'utf-8', id: '4711' });
  t.same(fake.violations, []);
});

t.test('the fake records an id SMSC does not take, and takes short international numbers', async (t) => {
  const { fake, provider } = await setup(t);
  await provider.send(loginMessage({ id: 'notice:42' }), AbortSignal.timeout(5000));
  await provider.send(loginMessage({ id: 'x'.repeat(41) }), AbortSignal.timeout(5000));
  t.equal(fake.violations.length, 2);
  t.match(fake.violations, [/^id not up to 40 characters/, /^id not up to 40 characters/]);
  fake.violations.length = 0;
  // Saint Helena's mobile numbers have 8 digits in all, Norway's 10.
  for (const to of ['+29051234', '+4740123456']) {
    await provider.send(loginMessage({ to, country: 'ZZ' }), AbortSignal.timeout(5000));
  }
  t.same(
    fake.accepted.slice(-2).map((sms) => sms.to),
    ['+29051234', '+4740123456'],
  );
  t.same(fake.violations, []);
});

t.test('errors 7 and 8 refuse the number for good; the account, rate and request errors are transient', async (t) => {
  const { fake, provider } = await setup(t);
  for (const code of [7, 8]) {
    fake.refuse(code);
    const error = await refusal(t, provider, loginMessage());
    t.type(error, SmsPermanentError, `${code}`);
    t.match((error as SmsPermanentError).reason, new RegExp(`^${code} `));
  }
  for (const code of [1, 3, 4, 6, 9, 42]) {
    fake.refuse(code);
    t.type(await refusal(t, provider, loginMessage()), SmsTransientError, `${code}`);
  }
  fake.refuse(undefined);
  const wrong = smscProvider({ login: LOGIN, password: 'wrong-password', sender: undefined, baseUrl: fake.url });
  const auth = await refusal(t, wrong, loginMessage());
  t.type(auth, SmsTransientError, 'a wrong password is transient');
  t.equal((auth as SmsTransientError).reason, '2 wrong login or password');
  t.notMatch(auth.message, 'wrong-password');
  t.same(fake.violations, []);
});

t.test('HTTP 500, a hang, garbage and a dead port are transient and quote nothing secret', async (t) => {
  const { fake, provider } = await setup(t);
  await checkTransportFailures(t, fake, provider, [PASSWORD, LOGIN]);
});
