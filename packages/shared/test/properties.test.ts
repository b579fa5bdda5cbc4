import t from 'tap';
import fc from 'fast-check';
import { ERROR_CATALOG } from '../src/contracts/errors.js';
import { toProblem } from '../src/platform/error-handler.js';
import { generateInviteCode, parseInviteCode } from '../src/contracts/invite-code.js';
import { normalizePhone } from '../src/contracts/phone.js';

const ru = { defaultRegion: 'RU', allowedCountries: ['RU'] };
const any = { defaultRegion: 'RU', allowedCountries: '*' as const };
const E164 = /^\+[1-9][0-9]{6,14}$/;

t.test('phone normalisation never throws, and what it accepts is E.164 and stable', async (t) => {
  const phoneLike = fc.stringMatching(/^[+]?[0-9 ()\-.]{0,24}$/);
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary' }), phoneLike), (input) => {
      for (const policy of [ru, any]) {
        const result = normalizePhone(input, policy);
        if (!result.ok) continue;
        if (!E164.test(result.e164)) return false;
        const again = normalizePhone(result.e164, policy);
        if (!again.ok || again.e164 !== result.e164) return false;
      }
      return true;
    }),
    { numRuns: 3000 },
  );
  t.pass('3000 inputs');
});

t.test('every common notation of a Russian mobile number gives the same E.164', async (t) => {
  const subscriber = fc.tuple(
    fc.constantFrom('912', '916', '926', '903', '999', '985'),
    fc.stringMatching(/^[0-9]{7}$/),
  );
  fc.assert(
    fc.property(subscriber, ([code, rest]) => {
      const expected = `+7${code}${rest}`;
      const a = rest.slice(0, 3);
      const b = rest.slice(3, 5);
      const c = rest.slice(5);
      const notations = [
        expected,
        `7${code}${rest}`,
        `8${code}${rest}`,
        `+7 (${code}) ${a}-${b}-${c}`,
        `8 ${code} ${a} ${b} ${c}`,
        `  +7-${code}-${a}-${b}-${c} `,
      ];
      return notations.every((n) => {
        const r = normalizePhone(n, ru);
        return r.ok ? r.e164 === expected : r.reason !== 'malformed';
      });
    }),
    { numRuns: 500 },
  );
  t.pass('500 numbers in six notations');
});

t.test('invite-code parsing: never throws, canonical output, case and spaces do not matter', async (t) => {
  fc.assert(
    fc.property(fc.anything(), (input) => {
      const parsed = parseInviteCode(input);
      return parsed === null || /^[A-Z0-9]{6}$/.test(parsed);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.constant(null).map(() => generateInviteCode()),
      fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
      fc.stringMatching(/^[ \t\n]{0,3}$/),
      (code, lower, pad) => {
        const mixed = [...code].map((ch, i) => (lower[i] ? ch.toLowerCase() : ch)).join('');
        return parseInviteCode(`${pad}${mixed}${pad}`) === code;
      },
    ),
    { numRuns: 1000 },
  );
  t.pass('3000 inputs');
});

t.test('the problem mapper never throws and always names a known code and status', async (t) => {
  const errorish = fc.oneof(
    fc.anything(),
    fc
      .record({ statusCode: fc.integer({ min: -5, max: 700 }), code: fc.string(), message: fc.string() })
      .map((r) => Object.assign(new Error(r.message), r)),
    fc.record({
      validation: fc.array(
        fc.record({
          instancePath: fc.string(),
          message: fc.string(),
          params: fc.dictionary(fc.string(), fc.anything()),
        }),
      ),
      validationContext: fc.string(),
    }),
  );
  fc.assert(
    fc.property(errorish, (error) => {
      const problem = toProblem(error);
      return (
        Object.hasOwn(ERROR_CATALOG, problem.code) &&
        problem.status >= 400 &&
        problem.status < 600 &&
        typeof problem.detail === 'string'
      );
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 400, max: 499 }),
      fc.string(),
      (statusCode, message) => toProblem(Object.assign(new Error(message), { statusCode })).status < 500,
    ),
    { numRuns: 500 },
  );
  t.pass('3500 errors');
});
