import type { MessageRecord } from './message-log.js';

const time = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** One block per message, newest first: its outcome on the first line, then how it got there. */
export function formatMessages(phone: string, records: readonly MessageRecord[]): string {
  if (records.length === 0) return `no messages to ${phone} in the last 7 days\n`;
  const lines = [`messages to ${phone}, newest first (kept 7 days):`];
  for (const m of records) {
    lines.push(
      `${time(m.created_at)}  #${m.id}  ${m.kind}  ${m.status}` +
        `${m.provider ? ` via ${m.provider}` : ''}${m.provider_message_id ? ` (${m.provider_message_id})` : ''}` +
        `${m.reason ? `: ${m.reason}` : ''}`,
    );
    for (const e of m.events) {
      lines.push(
        `    ${time(e.at)}  ${e.event}${e.provider ? ` ${e.provider}` : ''}${e.reason ? `: ${e.reason}` : ''}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
