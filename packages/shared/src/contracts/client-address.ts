import ipaddr from 'ipaddr.js';

/**
 * The key under which a client address is counted by per-client limits. An IPv4 address counts as
 * itself (an IPv4-mapped IPv6 address too). An IPv6 client counts per /64: one subscriber is
 * routinely given a whole /64 and picks addresses from it at will, so a per-address count would let
 * one client rotate through 2^64 fresh budgets.
 */
export function clientBucket(address: string): string {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    // Not an address (a test stand-in, a unix socket): counted as given, but never longer than a key should be.
    return address.slice(0, 64) || 'unknown';
  }
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const prefix = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(':')}::/64`;
}
