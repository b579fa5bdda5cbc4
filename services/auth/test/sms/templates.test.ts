import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError, loginCodeIn, SMS_LOCALES, smsLocaleFor, type SmsJob } from '@refstack/shared/contracts';
import { assertTemplatesFit, renderSms, segmentsOf, templateChecks } from '../../src/sms/render.js';
import { LOCALE_TEXTS, type LocaleTexts } from '../../src/sms/templates/index.js';
import { requestedSmsLocale } from '../../src/routes/sms-locale.js';

const HASH = 'FA+9qCX9VSu';
const code = (c: string): SmsJob => ({ kind: 'otp', to: '+79123456789', code: c, ttlSeconds: 300, expiresAt: 0 });
const none = { androidAppHash: undefined, webOtpDomain: undefined };

t.test('login texts in both locales: the code, the lifetime, one segment', async (t) => {
  t.equal(renderSms(code('042137'), LOCALE_TEXTS.en, none), 'Your login code is 042137. It expires in 5 minutes.');
  t.equal(renderSms(code('042137'), LOCALE_TEXTS.ru, none), 'Код: 042137. Действует 5 мин');
  t.equal(LOCALE_TEXTS.en.lifetime(60), '1 minute');
  t.equal(LOCALE_TEXTS.en.lifetime(90), '90 seconds');
  t.equal(LOCALE_TEXTS.ru.lifetime(90), '90 сек');
  for (const locale of SMS_LOCALES) {
    const text = renderSms(code('042137'), LOCALE_TEXTS[locale], {
      androidAppHash: HASH,
      webOtpDomain: 'app.example.com',
    });
    t.equal(loginCodeIn(text), '042137', `${locale}: the harness finds the code`);
    t.equal(segmentsOf(text).segments, 1, `${locale}: one segment with both autofill lines`);
  }
  t.match(segmentsOf(renderSms(code('042137'), LOCALE_TEXTS.en, none)), { encoding: 'GSM-7', limit: 160 });
  t.match(segmentsOf(renderSms(code('042137'), LOCALE_TEXTS.ru, none)), { encoding: 'UCS-2', limit: 70 });
});

t.test('autofill lines: the app hash on its own line, the WebOTP line last', async (t) => {
  const text = renderSms(code('123456'), LOCALE_TEXTS.en, { androidAppHash: HASH, webOtpDomain: 'app.example.com' });
  t.same(text.split('\n'), ['Your login code is 123456. It expires in 5 minutes.', HASH, '@app.example.com #123456']);
  t.same(renderSms(code('123456'), LOCALE_TEXTS.ru, { androidAppHash: HASH, webOtpDomain: undefined }).split('\n'), [
    'Код: 123456. Действует 5 мин',
    HASH,
  ]);
  const notice: SmsJob = {
    kind: 'invite_activated',
    to: '+7',
    inviteCode: 'AB12CD',
    invitedCount: 3,
    newCount: 2,
    expiresAt: 0,
  };
  t.equal(
    renderSms(notice, LOCALE_TEXTS.en, { androidAppHash: HASH, webOtpDomain: 'app.example.com' }),
    'Your invite code AB12CD was activated 2 times since the last notice. 3 people have joined with it so far.',
    'notices carry no code, so no autofill lines',
  );
  t.equal(
    renderSms(
      { kind: 'invite_activated', to: '+7', inviteCode: 'AB12CD', invitedCount: 1, expiresAt: 0 },
      LOCALE_TEXTS.en,
      none,
    ),
    'Your invite code AB12CD was activated once since the last notice. 1 person has joined with it so far.',
    'a notice queued by an earlier version reports one activation',
  );
  t.equal(renderSms(notice, LOCALE_TEXTS.ru, none), 'Код приглашения AB12CD активировали: +2. Всего: 3 чел.');
  const moved: SmsJob = { kind: 'phone_changed', to: '+7', newEnding: '0012', expiresAt: 0 };
  t.equal(
    renderSms(moved, LOCALE_TEXTS.en, { androidAppHash: HASH, webOtpDomain: 'app.example.com' }),
    'Your account moved to the phone number ending in 0012. If you did not do this, contact support.',
    'the previous number learns only the new one’s last digits, with no autofill lines',
  );
  t.equal(
    renderSms(moved, LOCALE_TEXTS.ru, none),
    'Аккаунт перенесён на номер …0012. Если это не вы, напишите в поддержку',
  );
});

t.test('the language: Accept-Language first, then the number country, then SMS_DEFAULT_LOCALE', async (t) => {
  t.equal(smsLocaleFor('+79123456789', undefined, 'en'), 'ru', 'Russian numbers get Russian');
  t.equal(smsLocaleFor('+447400123456', undefined, 'en'), 'en');
  t.equal(smsLocaleFor('+447400123456', undefined, 'ru'), 'ru', 'the default for other countries');
  t.equal(smsLocaleFor('+79123456789', 'en', 'en'), 'en', 'the client asked for English');
  t.equal(requestedSmsLocale({ 'accept-language': 'en-GB,en;q=0.9' }), 'en');
  t.equal(requestedSmsLocale({ 'accept-language': 'de, ru;q=0.5' }), 'ru', 'the first language we write');
  t.equal(requestedSmsLocale({ 'accept-language': 'ru;q=0.2, en;q=0.8' }), 'en', 'by preference');
  t.equal(requestedSmsLocale({ 'accept-language': 'de' }), undefined);
  t.equal(requestedSmsLocale({ 'accept-language': '*' }), undefined, 'any language: the country decides');
  t.equal(requestedSmsLocale({}), undefined);
});

t.test('every template fits one segment with the longest values of the defaults', async (t) => {
  const checks = templateChecks({ ...none, otpLength: 8, otpTtlSeconds: 86_400 });
  t.equal(checks.length, SMS_LOCALES.length * 3, 'each kind in each locale');
  for (const check of checks) t.equal(check.segments, 1, `${check.template}: ${check.length} of ${check.limit}`);
  t.doesNotThrow(() =>
    assertTemplatesFit({ androidAppHash: HASH, webOtpDomain: 'app.example.com', otpLength: 6, otpTtlSeconds: 300 }),
  );
});

t.test('a template that cannot fit one segment is refused, naming it and its length', async (t) => {
  const tooLong = {
    androidAppHash: HASH,
    webOtpDomain: 'accounts.very-long-company-name.example',
    otpLength: 8,
    otpTtlSeconds: 300,
  };
  const error = t.throws(() => assertTemplatesFit(tooLong)) as ConfigError;
  t.type(error, ConfigError);
  t.match(error.problems, [
    new RegExp(
      '^SMS template ru\\.otp: 93 characters with the longest code, the app hash and the WebOTP line, ' +
        'over the 70 of one UCS-2 segment$',
    ),
  ]);
  t.equal(error.problems.length, 1, 'the English one still fits its 160');

  const wordy: LocaleTexts = {
    ...LOCALE_TEXTS.en,
    templates: { ...LOCALE_TEXTS.en.templates, invite_activated: `${'x'.repeat(150)} {invite_code} {people}` },
  };
  const problems = (
    t.throws(() =>
      assertTemplatesFit({ ...none, otpLength: 6, otpTtlSeconds: 300 }, { ...LOCALE_TEXTS, en: wordy }),
    ) as ConfigError
  ).problems;
  t.match(problems, [
    /^SMS template en\.invite_activated: 177 characters with the longest values, over the 160 of one GSM-7 segment$/,
  ]);

  const broken: LocaleTexts = { ...LOCALE_TEXTS.ru, templates: { ...LOCALE_TEXTS.ru.templates, otp: 'Код {kode}' } };
  const misspelt = (
    t.throws(() =>
      assertTemplatesFit({ ...none, otpLength: 6, otpTtlSeconds: 300 }, { ...LOCALE_TEXTS, ru: broken }),
    ) as ConfigError
  ).problems;
  t.same(misspelt, ['SMS template ru.otp: unknown {kode}', 'SMS template ru.otp: has no {code}']);
});

t.test('the worker refuses to start with such a template, before it takes a job', async (t) => {
  const worker = fileURLToPath(new URL('../../src/sms-worker.ts', import.meta.url));
  const result = await promisify(execFile)(
    process.execPath,
    ['--conditions=@refstack/source', '--import', 'tsx', worker],
    {
      env: {
        ...process.env,
        SMS_WEBOTP_DOMAIN: 'accounts.very-long-company-name.example',
        SMS_ANDROID_APP_HASH: HASH,
        // Never reached: the check comes first.
        REDIS_URL: 'redis://127.0.0.1:1',
      },
      timeout: 60_000,
    },
  ).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => e,
  );
  t.not(result.code, 0);
  t.match(result.stderr, /SMS template ru\.otp: \d+ characters .* over the 70 of one UCS-2 segment/);
  t.notMatch(result.stderr, /Redis/, 'refused before connecting anywhere');
});
