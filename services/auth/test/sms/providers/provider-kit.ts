import type { Test } from 'tap';
import type { FakeProviderServer } from '@refstack/shared/testing';
import type { OutgoingSms } from '../../../src/sms/message.js';
import { SmsPermanentError, SmsTransientError, type SmsProvider } from '../../../src/sms/providers/provider.js';

export const PHONE = '+79123456789';

/** A message as the worker hands it over: a login code, two lines (the WebOTP line last). */
export function loginMessage(overrides: Partial<OutgoingSms> = {}): OutgoingSms {
  return {
    id: '4711',
    kind: 'otp',
    to: PHONE,
    country: 'RU',
    locale: 'ru',
    text: 'Код: 042137. Действует 5 мин\n@app.example.com #042137',
    code: '042137',
    expiresAt: Date.now() + 300_000,
    ...overrides,
  };
}

/** Sends and returns what it was refused with (or fails the test when it was accepted). */
export async function refusal(t: Test, provider: SmsProvider, message: OutgoingSms, timeoutMs = 5000): Promise<Error> {
  try {
    await provider.send(message, AbortSignal.timeout(timeoutMs));
  } catch (error) {
    return error as Error;
  }
  t.fail('the message was accepted');
  return new Error('accepted');
}

/**
 * The ways every provider can fail that are not about the number: an HTTP 500, no answer before
 * the timeout, a body that is not its documented answer, nothing listening. Each is transient, with
 * a message that holds neither the credentials, the phone nor the text.
 */
export async function checkTransportFailures(
  t: Test,
  fake: FakeProviderServer,
  provider: SmsProvider,
  secrets: readonly string[],
): Promise<void> {
  const message = loginMessage();
  const leaks = (error: Error) =>
    [...secrets, PHONE, PHONE.slice(1), message.text, 'Код'].filter(
      (s) => error.message.includes(s) || String((error as SmsTransientError).reason).includes(s),
    );

  fake.behaviour = 'http500';
  const http500 = await refusal(t, provider, message);
  t.type(http500, SmsTransientError, 'HTTP 500: transient');
  t.match((http500 as SmsTransientError).reason, /500/);

  fake.behaviour = 'hang';
  const started = Date.now();
  const hang = await refusal(t, provider, message, 300);
  t.type(hang, SmsTransientError, 'no answer: transient');
  t.equal((hang as SmsTransientError).reason, 'timeout');
  t.ok(Date.now() - started < 2000, `given up at the timeout (${Date.now() - started} ms)`);

  fake.behaviour = 'malformed';
  const malformed = await refusal(t, provider, message);
  t.type(malformed, SmsTransientError, 'a malformed body: transient');
  t.equal((malformed as SmsTransientError).reason, 'malformed answer');

  fake.behaviour = 'null';
  const notAnObject = await refusal(t, provider, message);
  t.type(notAnObject, SmsTransientError, 'JSON that is not an object: transient');
  t.equal((notAnObject as SmsTransientError).reason, 'malformed answer');

  fake.behaviour = 'ok';
  await fake.stop();
  const down = await refusal(t, provider, message);
  t.type(down, SmsTransientError, 'connection refused: transient');
  t.equal((down as SmsTransientError).reason, 'network');
  await fake.start();

  for (const error of [http500, hang, malformed, notAnObject, down])
    t.same(leaks(error), [], `no secret in "${error.message}"`);
  t.notOk(http500 instanceof SmsPermanentError);
}
