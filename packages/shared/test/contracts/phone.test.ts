import t from 'tap';
import { normalizePhone } from '../../src/contracts/phone.js';

const ru = { defaultRegion: 'RU', allowedCountries: ['RU'] };
const any = { defaultRegion: 'RU', allowedCountries: '*' as const };

t.test('real notations of one Russian mobile number all normalise to E.164', async (t) => {
  const notations = [
    '+7 (912) 345-67-89',
    '79123456789',
    '89123456789',
    '9123456789',
    '+79123456789',
    '8 912 345 67 89',
    '+7-912-345-67-89',
    '8(912)3456789',
    '7 (912) 345-67-89',
    '  +7 912 345 67 89  ',
    '+7.912.345.67.89',
  ];
  for (const input of notations) {
    t.same(normalizePhone(input, ru), { ok: true, e164: '+79123456789', country: 'RU' }, input);
  }
});

t.test('the first seed client phone without a plus sign', async (t) => {
  t.same(normalizePhone('79346559036', ru), { ok: true, e164: '+79346559036', country: 'RU' });
});

t.test('refusals name their reason', async (t) => {
  const cases: Array<[string, string, typeof ru | typeof any]> = [
    ['', 'malformed', ru],
    ['   ', 'malformed', ru],
    ['abc', 'malformed', ru],
    ['+7912', 'malformed', ru],
    ['1234567890123456', 'malformed', ru],
    ['+7 912 345 67 89 ext 12', 'malformed', ru],
    ['٧٩١٢٣٤٥٦٧٨٩', 'malformed', ru],
    ['+7 912 345 67 89; DROP TABLE users', 'malformed', ru],
    ['x'.repeat(10_000), 'malformed', ru],
    ['+7 000 000 00 00', 'invalid', ru],
    ['+74951234567', 'not_mobile', ru],
    ['84951234567', 'not_mobile', ru],
    ['+7 800 555 35 35', 'not_mobile', ru],
    ['+442071838750', 'not_mobile', any],
    ['+447400123456', 'country_not_allowed', ru],
    ['+1 415 555 2671', 'country_not_allowed', ru],
  ];
  for (const [input, reason, policy] of cases) {
    t.match(normalizePhone(input, policy), { ok: false, reason }, JSON.stringify(input.slice(0, 40)));
  }
  t.same(
    normalizePhone('+7 800 555 35 35', ru),
    { ok: false, reason: 'not_mobile', numberType: 'toll_free' },
    'names the type',
  );
});

t.test('ALLOWED_COUNTRIES=* accepts foreign mobiles', async (t) => {
  t.same(normalizePhone('+447400123456', any), { ok: true, e164: '+447400123456', country: 'GB' });
  t.same(normalizePhone('+1 415 555 2671', any), { ok: true, e164: '+14155552671', country: 'US' });
});

t.test('the default region decides numbers written without a country code', async (t) => {
  const kz = { defaultRegion: 'KZ', allowedCountries: ['KZ', 'RU'] };
  t.same(normalizePhone('8 701 234 56 78', kz), { ok: true, e164: '+77012345678', country: 'KZ' });
});
