import { isIPv4, isIPv6 } from 'node:net';
import Bowser from 'bowser';
import type { SessionOrigin } from '../tokens/session-store.js';

const MAX_LABEL = 80;

/**
 * A label a person recognises their device by: "Chrome 120 on Android 14" for a browser, or the
 * User-Agent's first product ("MyApp/2.1") for an app that names itself otherwise.
 */
export function deviceLabel(userAgent: string | undefined): string {
  const ua = (userAgent ?? '').trim();
  if (!ua) return 'unknown device';
  const parsed = Bowser.parse(ua);
  const browser = [parsed.browser.name, parsed.browser.version?.split('.')[0]].filter(Boolean).join(' ');
  const os = [parsed.os.name, parsed.os.versionName ?? parsed.os.version].filter(Boolean).join(' ');
  const label = browser && os ? `${browser} on ${os}` : browser || os || (ua.split(/\s/)[0] ?? ua);
  // Printable characters only: the label is shown back to its owner as it came.
  return label.replace(/[^\x20-\x7e]/g, '').slice(0, MAX_LABEL) || 'unknown device';
}

/** Enough of an address to tell networks apart, not enough to locate a person: a /24 or a /48. */
export function maskedAddress(ip: string): string {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (isIPv4(v4)) return `${v4.split('.').slice(0, 3).join('.')}.0/24`;
  if (isIPv6(ip)) {
    const [head = '', tail = ''] = ip.split('::');
    const groups = [...head.split(':').filter(Boolean)];
    const tailGroups = tail.split(':').filter(Boolean);
    while (groups.length + tailGroups.length < 8) groups.push('0');
    const full = [...groups, ...tailGroups].slice(0, 3).map((g) => g.replace(/^0+(?=.)/, ''));
    return `${full.join(':')}::/48`;
  }
  return 'unknown';
}

export function sessionOrigin(request: { ip: string; headers: { 'user-agent'?: string | undefined } }): SessionOrigin {
  return { device: deviceLabel(request.headers['user-agent']), ip: maskedAddress(request.ip) };
}
