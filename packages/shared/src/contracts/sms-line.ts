/**
 * The line the console provider prints for each message, alone on a line of standard output (a
 * log prefix before it is allowed): `SMS to <E.164>: <text>`. A line break in the text is printed
 * as a space, so one message is always one line.
 */
export function formatSmsLine(to: string, text: string): string {
  return `SMS to ${to}: ${text.replace(/[\r\n]+/g, ' ')}`;
}

const SMS_LINE = /SMS to (\+\d{7,15}): (.*)$/;

/** The message in an output line (after any prefix), or undefined when the line is none. */
export function parseSmsLine(line: string): { to: string; text: string } | undefined {
  const match = SMS_LINE.exec(line);
  return match?.[1] && match[2] !== undefined ? { to: match[1], text: match[2] } : undefined;
}

/** The login code in a message text, or undefined. */
export function loginCodeIn(text: string): string | undefined {
  return /login code is (\d+)/.exec(text)?.[1];
}
