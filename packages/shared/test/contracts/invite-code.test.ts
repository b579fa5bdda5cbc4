import t from 'tap';
import { generateInviteCode, INVITE_CODE_ALPHABET, parseInviteCode } from '../../src/contracts/invite-code.js';

t.test('generated codes are 6 symbols of A-Z0-9 and spread over the alphabet', async (t) => {
  const seen = new Set<string>();
  const symbols = new Set<string>();
  for (let i = 0; i < 2000; i += 1) {
    const code = generateInviteCode();
    if (!/^[A-Z0-9]{6}$/.test(code)) t.fail(`malformed code ${code}`);
    seen.add(code);
    for (const ch of code) symbols.add(ch);
  }
  t.equal(seen.size, 2000, 'no collisions in 2000 draws from 36^6');
  t.equal(symbols.size, INVITE_CODE_ALPHABET.length, 'every symbol appears');
});

t.test('parsing trims and upper-cases, and refuses anything else', async (t) => {
  t.equal(parseInviteCode('ab12cd'), 'AB12CD');
  t.equal(parseInviteCode('  xy9z0q \n'), 'XY9Z0Q');
  t.equal(parseInviteCode('AB12CD'), 'AB12CD');
  for (const bad of ['', 'ABC', 'ABCDEFG', 'AB-2CD', 'AB 2CD', 'ÄB12CD', 'ab12c', null, 123456, {}, 'A'.repeat(100)]) {
    t.equal(parseInviteCode(bad), null, JSON.stringify(bad));
  }
});
