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

  async noticeInviter(activation: InviteActivation): Promise<void> {
    if (this.failing) throw new Error('bus down');
    this.notices.push(activation);
  }

  /** Inviters whose pending notice was dropped. */
  readonly forgotten: string[] = [];

  async forgetInviter(inviterId: string): Promise<void> {
    if (this.failing) throw new Error('bus down');
    this.forgotten.push(inviterId);
  }

  async close(): Promise<void> {}

  lastCodeFor(phone: string): string {
    const job = this.jobs.filter((j) => j.to === phone && j.kind === 'otp').at(-1);
    const code = job?.kind === 'otp' ? job.code : undefined;
    if (!code) throw new Error(`no code was sent to ${phone}`);
    return code;
  }
}
