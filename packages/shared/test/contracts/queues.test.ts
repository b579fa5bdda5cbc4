import t from 'tap';
import { smsJobOptions, smsRetryDelay, type SmsJob } from '../../src/contracts/queues.js';

t.test("retries of a send span the message's lifetime, not seconds", async (t) => {
  for (const lifetimeMs of [300_000, 900_000, 86_400_000]) {
    const now = 1_000_000;
    const job: SmsJob = {
      kind: 'otp',
      to: '+79123456789',
      code: '123456',
      ttlSeconds: 300,
      expiresAt: now + lifetimeMs,
    };
    const options = smsJobOptions(job, now);
    // Even when every jittered delay comes out at its shortest, the retries reach the expiry.
    let waited = 0;
    for (let attempt = 1; attempt < (options.attempts ?? 1); attempt += 1) waited += smsRetryDelay(attempt, () => 0);
    t.ok(waited >= lifetimeMs, `${lifetimeMs / 1000} s of life: retries for at least ${Math.round(waited / 1000)} s`);
    t.ok(smsRetryDelay(40, () => 1) <= 30_000, 'no wait between tries grows past half a minute');
    t.same(
      { removeOnComplete: options.removeOnComplete, removeOnFail: options.removeOnFail },
      { removeOnComplete: true, removeOnFail: true },
      'the job leaves Redis whatever happens',
    );
  }
});
