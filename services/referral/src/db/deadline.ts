import { AppError } from '@refstack/shared/contracts';

export function tooLate(): AppError {
  return new AppError('service_unavailable', 'The request could not be completed in time; try again shortly.', {
    retryAfter: 1,
  });
}

/**
 * The moment by which a piece of work must have answered. A 503 it gives always means that nothing
 * was committed: work checks it before each step and before its commit, and a commit under way
 * when the moment passes is waited for instead.
 */
export class Deadline {
  private committing = false;
  /** Set when the 503 has been given: from then on no step may start, whatever the clock says. */
  private expired = false;

  private constructor(readonly at: number) {}

  static in(ms: number): Deadline {
    return new Deadline(Date.now() + ms);
  }

  remainingMs(): number {
    return Math.max(0, this.at - Date.now());
  }

  /** Throws the 503 once the moment has passed: work that would start late does not start. */
  check(): void {
    if (this.expired || Date.now() >= this.at) throw tooLate();
  }

  /** The last check, right before a commit: from here the work's own outcome is the answer. */
  beginCommit(): void {
    this.check();
    this.committing = true;
  }

  /** The commit did not happen (the transaction failed): the deadline holds again. */
  endCommit(): void {
    this.committing = false;
  }

  /**
   * The work's outcome, or the 503 when the deadline comes first. Work still running then goes on
   * in the background, bounded by the database's timeouts, and stops at its next check.
   */
  async race<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      // During a commit the work ends by itself: it succeeds, or fails and meets its next check.
      timer = setTimeout(() => {
        if (this.committing) return;
        // A timer may fire a little before Date.now() reaches `at`; work queued behind a lock slot
        // must not then pass its last check and commit under an answer that says nothing was done.
        this.expired = true;
        reject(tooLate());
      }, this.remainingMs());
    });
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
