import { isIP } from 'node:net';
import { compile as compileTrust } from '@fastify/proxy-addr';
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

/**
 * An address as some balancers write it, with its port (`203.0.113.9:5678`, `[2001:db8::1]:443`),
 * without the port; anything else as it is.
 */
export function withoutPort(entry: string): string {
  if (isIP(entry) !== 0) return entry;
  const bare = /^\[([^\]]+)\]:\d+$/.exec(entry)?.[1] ?? /^([^:]+):\d+$/.exec(entry)?.[1];
  return bare !== undefined && isIP(bare) !== 0 ? bare : entry;
}

/**
 * Fastify's `trustProxy` for these proxies, judging an `X-Forwarded-For` entry written with a port
 * by its address: otherwise a trusted balancer's own `10.1.1.1:40000` would end the walk and be
 * taken for the client, and everyone behind it would count as one.
 */
export function trustingProxies(proxies: readonly string[]): (address: string, hop: number) => boolean {
  const trusted = compileTrust([...proxies]);
  return (address, hop) => trusted(withoutPort(address), hop);
}
