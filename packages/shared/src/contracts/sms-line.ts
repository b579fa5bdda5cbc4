/**
 * The line the console provider prints for each message, alone on a line of standard output (a
 * log prefix before it is allowed): `SMS to <E.164>: <text>`. A message of several lines is still
 * one output line: a line break in the text is printed as `\n` (and a carriage return as `\r`, a
 * backslash as `\\`), so that `parseSmsLine` gives the text back exactly.
 */
export function formatSmsLine(to: string, text: string): string {
  return `SMS to ${to}: ${text.replace(/[\\\r\n]/g, (c) => ESCAPES[c] ?? c)}`;
}

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r' };
const UNESCAPES: Record<string, string> = { '\\': '\\', n: '\n', r: '\r' };

const SMS_LINE = /SMS to (\+\d{7,15}): (.*)$/;

/** The message in an output line (after any prefix), or undefined when the line is none. */
export function parseSmsLine(line: string): { to: string; text: string } | undefined {
  const match = SMS_LINE.exec(line);
  if (!match?.[1] || match[2] === undefined) return undefined;
  return { to: match[1], text: match[2].replace(/\\([\\nr])/g, (_, c: string) => UNESCAPES[c] ?? c) };
}

/**
 * The login code in a message text, in any of the SMS locales' login templates ("Your login code
 * is 123456", "Код: 123456"), or undefined.
 */
export function loginCodeIn(text: string): string | undefined {
  return /(?:login code is|код:)\s*(\d{4,8})(?!\d)/iu.exec(text)?.[1];
}
