import { formatSmsLine } from '@refstack/shared/contracts';
import type { SmsProvider } from './provider.js';

/**
 * Prints each message as the contract's line, `SMS to <E.164>: <text>`, alone on a line of stdout.
 * One write per line, so lines of concurrent jobs never interleave. The console has no receipts:
 * a printed message is `sent`.
 */
export function consoleSmsProvider(write: (line: string) => void = (line) => process.stdout.write(line)): SmsProvider {
  return {
    name: 'console',
    carries: () => true,
    async send(message) {
      write(`${formatSmsLine(message.to, message.text)}\n`);
      return {};
    },
  };
}
