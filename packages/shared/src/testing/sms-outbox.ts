import type { SmsJob } from '../contracts/queues.js';
import type { InviteActivation, SmsQueue } from '../platform/sms-queue.js';

/** Takes what would go on the SMS queue, so a test reads a code as its user reads the SMS. */
export class SmsOutbox implements SmsQueue {
  readonly jobs: SmsJob[] = [];
  /** Activations handed on for the inviters' coalesced notices. */
  readonly notices: InviteActivation[] = [];
  /** While set, sending fails as a queue whose Redis is away does. */
  failing = false;

  async send(job: SmsJob): Promise<void> {
    if (this.failing) throw new Error('bus down');
    this.jobs.push(job);
  }

  /** Inviters with a notice on its way (as the queue has one per window), and the number it goes to. */
  readonly pending = new Map<string, string>();
  /** Runs before a notice is counted: a test's way to land something in between. */
  beforeNotice: ((activation: InviteActivation) => Promise<void>) | undefined;

  async noticeInviter(activation: InviteActivation): Promise<boolean> {
    await this.beforeNotice?.(activation);
    if (this.failing) throw new Error('bus down');
    this.notices.push(activation);
    if (this.pending.has(activation.inviterId)) return false;
    this.pending.set(activation.inviterId, activation.to);
    return true;
  }

  /** Inviters whose pending notice was dropped. */
  readonly forgotten: string[] = [];

  async forgetInviter(inviterId: string): Promise<void> {
    if (this.failing) throw new Error('bus down');
    this.forgotten.push(inviterId);
    this.pending.delete(inviterId);
  }

  async close(): Promise<void> {}

  lastCodeFor(phone: string): string {
    const job = this.jobs.filter((j) => j.to === phone && j.kind === 'otp').at(-1);
    const code = job?.kind === 'otp' ? job.code : undefined;
    if (!code) throw new Error(`no code was sent to ${phone}`);
    return code;
  }
}
