import t from 'tap';
import { CAPTCHA_PROVIDERS, type CaptchaConfig, type CaptchaProviderName } from '@refstack/shared/contracts';
import { FakeCaptchaServer } from '@refstack/shared/testing';
import { createCaptchaVerifier, type CaptchaVerdict } from '../../src/guard/captcha.js';

const IP = '203.0.113.7';
const FORM = 'application/x-www-form-urlencoded';

/** Each provider's endpoint, field names and token limit as its documentation gives them. */
const DOCUMENTED: Record<CaptchaProviderName, { path: string; token: string; ip: string; maxToken: number }> = {
  turnstile: { path: '/turnstile/v0/siteverify', token: 'response', ip: 'remoteip', maxToken: 2048 },
  hcaptcha: { path: '/siteverify', token: 'response', ip: 'remoteip', maxToken: 32_768 },
  smartcaptcha: { path: '/validate', token: 'token', ip: 'ip', maxToken: 32_768 },
};

function captchaConfig(provider: CaptchaProviderName, baseUrl: string, secret: string): CaptchaConfig {
  return { provider, secret, baseUrl, mode: 'always', failOpen: false, timeoutMs: 300 };
}

for (const provider of CAPTCHA_PROVIDERS) {
  t.test(`${provider}: the verifier against the fake of its documented API`, async (t) => {
    const fake = new FakeCaptchaServer(provider);
    await fake.start();
    t.teardown(() => fake.stop());
    const documented = DOCUMENTED[provider];
    const verifier = createCaptchaVerifier(captchaConfig(provider, fake.url, fake.secret));
    const verdicts: CaptchaVerdict[] = [];
    const tokens: string[] = [];
    const issue = () => {
      const token = fake.issue();
      tokens.push(token);
      return token;
    };
    const verify = async (token: string, check = verifier) => {
      const verdict = await check.verify(token, IP);
      verdicts.push(verdict);
      return verdict;
    };
    // SmartCaptcha answers a forged, an expired and a reused token alike ("Invalid or expired Token.").
    const spent = provider === 'smartcaptcha' ? 'invalid' : 'expired';

    await t.test('a fresh token passes; secret, token and address go in the documented fields', async (t) => {
      const token = issue();
      const before = fake.calls.length;
      t.same(await verify(token), { result: 'passed' });
      t.equal(fake.calls.length, before + 1, 'one call');
      t.same(fake.calls.at(-1), {
        path: documented.path,
        fields: { secret: fake.secret, [documented.token]: token, [documented.ip]: IP },
      });
    });

    await t.test('a token the provider never issued is invalid', async (t) => {
      t.match(await verify('forged-token'), { result: 'refused', reason: 'invalid' });
      t.match(await verify('x'.repeat(documented.maxToken)), { result: 'refused', reason: 'invalid' }, 'at the limit');
    });

    await t.test(`an expired token is refused as ${spent}`, async (t) => {
      const token = issue();
      fake.expire(token);
      t.match(await verify(token), { result: 'refused', reason: spent });
    });

    await t.test(`a token used once already is refused as ${spent}`, async (t) => {
      const token = issue();
      t.same(await verify(token), { result: 'passed' });
      t.match(await verify(token), { result: 'refused', reason: spent });
    });

    await t.test('a wrong secret is ours to fix: unavailable, not the client refused', async (t) => {
      const wrong = createCaptchaVerifier(captchaConfig(provider, fake.url, 'not-the-secret'));
      const verdict = await verify(issue(), wrong);
      t.match(verdict, { result: 'unavailable' });
      t.notMatch(verdict, { detail: 'not-the-secret' });
    });

    await t.test('an outage: a 500, no answer within the timeout, nothing listening', async (t) => {
      fake.down('error500');
      t.same(await verify(issue()), { result: 'unavailable', detail: 'HTTP 500' });
      fake.down('hang');
      t.same(await verify(issue()), { result: 'unavailable', detail: 'no answer within 300 ms' });
      fake.down(false);
      await fake.stop();
      t.same(await verify(issue()), { result: 'unavailable', detail: 'unreachable' });
      await fake.start();
      t.same(await verify(issue()), { result: 'passed' }, 'back');
    });

    await t.test('an empty or oversized token is refused without a call', async (t) => {
      const before = fake.calls.length;
      t.match(await verify(''), { result: 'refused', reason: 'invalid' });
      t.match(await verify('x'.repeat(documented.maxToken + 1)), { result: 'refused', reason: 'invalid' });
      t.equal(fake.calls.length, before);
    });

    await t.test('no verdict quotes the secret or a token', async (t) => {
      const quoted = JSON.stringify(verdicts);
      for (const secret of [fake.secret, ...tokens]) t.notOk(quoted.includes(secret), 'not quoted');
    });
  });
}

t.test('the fakes hold to the documented APIs: method, path, body type, idempotency', async (t) => {
  for (const provider of CAPTCHA_PROVIDERS) {
    const fake = new FakeCaptchaServer(provider, { secret: 'fixed-secret' });
    await fake.start();
    t.teardown(() => fake.stop());
    const url = `${fake.url}${DOCUMENTED[provider].path}`;
    const post = (body: string, type: string) =>
      fetch(url, { method: 'POST', headers: { 'content-type': type }, body }).then((r) => r.json() as Promise<unknown>);
    t.equal((await fetch(url)).status, 405, `${provider}: GET`);
    t.equal((await fetch(`${fake.url}/other`, { method: 'POST' })).status, 404, `${provider}: another path`);
    const asJson = JSON.stringify({ secret: 'fixed-secret', [DOCUMENTED[provider].token]: fake.issue() });
    // Turnstile alone documents JSON bodies; SmartCaptcha reads none, so it misses the secret.
    const expected = {
      turnstile: { success: true },
      hcaptcha: { 'error-codes': ['bad-request'] },
      smartcaptcha: { message: /^Authentication failed/ },
    };
    t.match(await post(asJson, 'application/json'), expected[provider], `${provider}: a JSON body`);
    if (provider !== 'turnstile') continue;
    const token = fake.issue();
    const form = (key?: string) =>
      new URLSearchParams({ secret: 'fixed-secret', response: token, ...(key ? { idempotency_key: key } : {}) });
    t.match(await post(form('key-1').toString(), FORM), { success: true });
    t.match(await post(form('key-1').toString(), FORM), { success: true }, 'a retry with its idempotency key');
    t.match(await post(form().toString(), FORM), { 'error-codes': ['timeout-or-duplicate'] }, 'without');
  }
});

t.test('answers the fakes do not give: the client is blamed only for what it could have caused', async (t) => {
  const answer = (provider: CaptchaProviderName, status: number, body: string) =>
    createCaptchaVerifier(captchaConfig(provider, 'http://provider.invalid', 'secret'), {
      fetch: () => Promise.resolve(new Response(body, { status })),
    }).verify('token', IP);
  const codes = (...list: string[]) => JSON.stringify({ success: false, 'error-codes': list });

  t.match(await answer('hcaptcha', 200, codes('not-using-dummy-passcode')), { result: 'refused', reason: 'invalid' });
  t.match(await answer('hcaptcha', 200, codes('invalid-or-already-seen-response')), { reason: 'expired' });
  t.match(
    await answer('hcaptcha', 200, codes('sitekey-secret-mismatch')),
    { result: 'refused', reason: 'invalid' },
    "a token solved on another site's key is the client's, or fail-open would let it through",
  );
  t.match(await answer('hcaptcha', 200, codes('invalid-input-secret')), { result: 'unavailable' });
  t.same(await answer('turnstile', 200, codes('internal-error')), { result: 'unavailable', detail: 'internal-error' });
  t.match(await answer('turnstile', 200, codes()), { result: 'refused', reason: 'invalid', detail: 'no error code' });
  t.match(await answer('smartcaptcha', 200, '{"status":"failed","message":""}'), { reason: 'invalid' }, 'a robot');
  const forbidden = '{"status":"failed","message":"Authentication failed. Invalid secret."}';
  t.same(await answer('smartcaptcha', 403, forbidden), { result: 'unavailable', detail: 'HTTP 403' });
  t.match(await answer('turnstile', 200, '<html>busy</html>'), { result: 'unavailable', detail: 'answer not JSON' });
  t.match(await answer('turnstile', 200, '{}'), { result: 'unavailable' });
  t.match(await answer('smartcaptcha', 200, '{"status":"unknown"}'), { result: 'unavailable' });
});

t.test('no provider or no secret is a programming error, caught at start', async (t) => {
  const complete = captchaConfig('turnstile', 'http://provider.invalid', 'secret');
  t.throws(() => createCaptchaVerifier({ ...complete, provider: undefined }));
  t.throws(() => createCaptchaVerifier({ ...complete, secret: undefined }));
});
