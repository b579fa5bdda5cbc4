/** A URL safe to print: the password, if any, is masked. */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return maskUrlPassword(url);
  }
}

/**
 * One configured value as given, with the password of the URL it holds masked. Works on values
 * that do not parse as URLs too: the password is everything between the user's `:` and the last
 * `@`, which may well hold an unencoded `@`, space or quote.
 */
export function maskUrlPassword(value: string): string {
  const start = value.indexOf('://');
  const at = value.lastIndexOf('@');
  if (start < 0 || at < start) return value;
  const colon = value.slice(start + 3, at).indexOf(':');
  return colon < 0 ? value : `${value.slice(0, start + 3 + colon + 1)}***${value.slice(at)}`;
}

// In running text, `scheme://user:password@` with the password up to the last `@` on its line
// (short of a quote). Masking too much of a line is the safe way to be wrong.
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/?#"'`]*):[^\r\n"'`]*@/gi;

/**
 * Any text with the passwords of the URLs in it masked (`postgres://u:***@h/db`), whether or not
 * those URLs parse: for messages that quote a library's error or a configured value.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_PASSWORD, '$1:***@');
}
