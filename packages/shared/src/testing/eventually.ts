/**
 * Polls until the condition holds and says how long it took; throws naming `what` past the deadline.
 * For waiting on a condition, never on the clock.
 */
export async function eventually(
  what: string,
  condition: () => Promise<boolean> | boolean,
  deadlineMs: number,
  pollMs = 20,
): Promise<number> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > deadlineMs) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return Date.now() - start;
}
