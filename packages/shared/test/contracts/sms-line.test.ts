import t from 'tap';
import fc from 'fast-check';
import { formatSmsLine, loginCodeIn, parseSmsLine } from '../../src/contracts/sms-line.js';

t.test('a message of several lines is one output line, its breaks printed as \\n', async (t) => {
  const line = formatSmsLine('+79123456789', 'Код: 123456. Действует 5 мин\nFA+9qCX9VSu\n@app.example.com #123456');
  t.equal(line, 'SMS to +79123456789: Код: 123456. Действует 5 мин\\nFA+9qCX9VSu\\n@app.example.com #123456');
  t.notMatch(line, /[\r\n]/);
  t.same(parseSmsLine(`[sms-worker] ${line}`), {
    to: '+79123456789',
    text: 'Код: 123456. Действует 5 мин\nFA+9qCX9VSu\n@app.example.com #123456',
  });
});

t.test('any text survives the line: format, then parse, gives it back', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (text) => {
      const line = formatSmsLine('+79123456789', text);
      return !/[\r\n]/.test(line) && parseSmsLine(line)?.text === text;
    }),
  );
  t.equal(parseSmsLine(formatSmsLine('+79123456789', 'a\\nb'))?.text, 'a\\nb', 'a backslash and n stay two characters');
});

t.test('the login code in either language', async (t) => {
  t.equal(loginCodeIn('Your login code is 042137. It expires in 5 minutes.'), '042137');
  t.equal(loginCodeIn('Код: 042137. Действует 5 мин\nFA+9qCX9VSu'), '042137');
  t.equal(loginCodeIn('Someone just activated your invite code AB12CD.'), undefined);
});
