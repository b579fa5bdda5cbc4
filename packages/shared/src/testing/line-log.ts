import { loginCodeIn, parseSmsLine } from '../contracts/sms-line.js';

/** One message as the SMS worker printed it. */
export interface Sms {
  to: string;
  text: string;
  /** The worker that printed it (`sms-worker`, or `sms-worker-2` when several run). */
  from?: string;
}

export type LineMatch = RegExp | ((line: string) => boolean);

/** The processes that print SMS lines (`sms-worker`, `sms-worker-2`); a line from anyone else is not an SMS. */
const SMS_SOURCE = /^sms-worker(-\d+)?$/;

// `scripts/start.mjs` pads the bracketed name to the longest name, so one or more spaces follow it.
const SOURCE_PREFIX = /^\[([^\]\s]+)\] +/;

/** A search of `list` from index `from` on that resumes where it stopped, so a long wait stays linear. */
function scanner<T>(list: readonly T[], from: number, test: (item: T) => boolean): () => T | undefined {
  let next = from;
  return () => {
    for (; next < list.length; next++) {
      const item = list[next];
      if (item !== undefined && test(item)) return item;
    }
    return undefined;
  };
}

function tester(match: LineMatch): (line: string) => boolean {
  if (typeof match === 'function') return match;
  // A global or sticky pattern keeps `lastIndex` between calls and would skip a later match.
  const pattern = new RegExp(match.source, match.flags.replace(/[gy]/g, ''));
  return (line) => pattern.test(line);
}

/**
 * The output of the system's processes, one line at a time, each as `[process] text`, and every SMS
 * the worker printed. Waits are for a condition with a deadline and wake on each new line.
 */
export class LineLog {
  readonly lines: string[] = [];
  readonly sms: Sms[] = [];
  private readonly listeners = new Set<() => void>();

  /** A line as `scripts/start.mjs` prints it: already prefixed with its process name, or not at all. */
  push(line: string): void {
    const prefix = SOURCE_PREFIX.exec(line);
    this.record(line, prefix?.[1], prefix ? line.slice(prefix[0].length) : line);
  }

  /** A line read straight from one process's output. */
  pushFrom(source: string, text: string): void {
    this.record(`[${source}] ${text}`, source, text);
  }

  private record(line: string, source: string | undefined, text: string): void {
    this.lines.push(line);
    const sms = source !== undefined && SMS_SOURCE.test(source) ? parseSmsLine(text) : undefined;
    if (sms) this.sms.push({ ...sms, from: source });
    for (const listener of [...this.listeners]) listener();
  }

  /** The last lines, for a failure message that shows what the processes were doing. */
  tail(count = 30): string {
    return this.lines.slice(-count).join('\n');
  }

  /**
   * Resolves with the first line that matches from index `since` on (by default: from now on).
   * Rejects once `timeoutMs` pass without one.
   */
  waitForLine(match: LineMatch, timeoutMs = 10_000, since = this.lines.length): Promise<string> {
    return this.waitUntil(scanner(this.lines, since, tester(match)), timeoutMs, `line matching ${String(match)}`);
  }

  /** The next SMS (from index `since` in `sms` on) that passes the check. */
  waitForSms(check: (sms: Sms) => boolean, timeoutMs = 10_000, since = this.sms.length): Promise<Sms> {
    return this.waitUntil(scanner(this.sms, since, check), timeoutMs, 'SMS');
  }

  /** The text of the next SMS to `to` whose text matches. */
  async nextSms(to: string, pattern: RegExp, since = this.sms.length, timeoutMs = 10_000): Promise<string> {
    const test = tester(pattern);
    return (await this.waitForSms((sms) => sms.to === to && test(sms.text), timeoutMs, since)).text;
  }

  /** The code of the next login SMS to `to`, in any language. */
  async nextLoginCode(to: string, since = this.sms.length, timeoutMs = 10_000): Promise<string> {
    const sms = await this.waitForSms((s) => s.to === to && loginCodeIn(s.text) !== undefined, timeoutMs, since);
    return loginCodeIn(sms.text) as string;
  }

  /** The code of the latest login SMS to `phone`, or undefined when none was printed yet. */
  smsCode(phone: string): string | undefined {
    for (let i = this.sms.length - 1; i >= 0; i--) {
      const sms = this.sms[i];
      const code = sms?.to === phone ? loginCodeIn(sms.text) : undefined;
      if (code !== undefined) return code;
    }
    return undefined;
  }

  /** Settles when `find` returns something after a new line (or already now), or at the deadline. */
  private waitUntil<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      const listener = () => {
        const value = find();
        if (value === undefined) return;
        finish();
        resolve(value);
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no ${what} within ${timeoutMs} ms; the last lines:\n${this.tail()}`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }
}
