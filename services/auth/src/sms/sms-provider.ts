import { formatSmsLine } from '@refstack/shared/contracts';

/** Where an SMS goes. A real gateway (an HTTP API) implements this and is chosen by SMS_PROVIDER. */
export interface SmsProvider {
  readonly name: string;
  /** Resolves once the provider accepted the message; rejects with SmsPermanentError when it never will. */
  send(to: string, text: string): Promise<void>;
}

/** The provider refused this message for good (a bad or blocked number): retrying cannot help. */
export class SmsPermanentError extends Error {
  override name = 'SmsPermanentError';
}

/**
 * Prints each message as the contract's line, `SMS to <E.164>: <text>`, alone on a line of stdout.
 * One write per line, so lines of concurrent jobs never interleave.
 */
export function consoleSmsProvider(write: (line: string) => void = (line) => process.stdout.write(line)): SmsProvider {
  return {
    name: 'console',
    async send(to, text) {
      write(`${formatSmsLine(to, text)}\n`);
    },
  };
}

export function createSmsProvider(name: 'console'): SmsProvider {
  switch (name) {
    case 'console':
      return consoleSmsProvider();
  }
}
