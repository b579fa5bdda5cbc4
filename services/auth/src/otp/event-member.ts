import { randomBytes } from 'node:crypto';

/**
 * Rolling windows count events as members of a sorted set scored by time, so each member must be
 * unique across every auth instance while it counts. A random tag drawn once per process and a
 * counter make it so without asking for fresh randomness on every request (a system's worth of
 * work that showed in send-code's profile); nothing relies on a member being unpredictable.
 */
const processTag = randomBytes(9).toString('base64url');
let sequence = 0;

export function eventMember(now: number): string {
  sequence += 1;
  return `${now}:${processTag}${sequence.toString(36)}`;
}

/** The time a member was made at, as `eventMember` wrote it. */
export function memberTime(member: string): number | undefined {
  const time = Number(member.slice(0, member.indexOf(':')));
  return member.includes(':') && Number.isSafeInteger(time) && time > 0 ? time : undefined;
}
