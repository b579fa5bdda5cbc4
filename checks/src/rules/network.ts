/** Who can reach whom: published ports, the service URLs, and whose X-Forwarded-For auth believes. */
import { PROCESSES, type ProcessName } from '@refstack/shared/contracts';
import type { Artefacts } from '../artefacts.js';
import { environmentOf, withDefaults } from '../parsers/compose.js';
import { appProcess, PUBLIC_SERVICE, schemaDefault, STARTUP_URL_VARS, STORES, URL_VARS } from './expected.js';
import type { Rule } from './rule.js';

/** The port a compose service listens on inside its container, if it is a store or an app that listens. */
function listeningPort(a: Artefacts, name: string): string | undefined {
  if (name in STORES) return String(STORES[name]);
  const portVar = appProcess(name)?.portVar;
  if (!portVar) return undefined;
  const value = environmentOf(a.compose.services[name] ?? {})[portVar];
  return value !== undefined ? withDefaults(value) : String(schemaDefault(portVar));
}

/** TRUSTED_PROXIES entries that trust every peer. */
const TRUST_ALL = ['0.0.0.0/0', '::/0', '*', 'true'];

export const networkRules = {
  'only the gateway publishes a port, and the one it listens on': (a) => {
    const problems: string[] = [];
    for (const [name, service] of Object.entries(a.compose.services)) {
      if (service.network_mode === 'host') problems.push(`${name}: network_mode host bypasses port isolation`);
      if (name !== PUBLIC_SERVICE && service.ports?.length) {
        problems.push(`${name}: publishes ${JSON.stringify(service.ports)}`);
      }
    }
    const ports = a.compose.services[PUBLIC_SERVICE]?.ports ?? [];
    if (ports.length !== 1) return [...problems, `${PUBLIC_SERVICE}: must publish exactly one port`];
    const port = ports[0];
    const inner =
      typeof port === 'object'
        ? String(port.target)
        : (withDefaults(String(port)).split(':').pop() ?? '').replace(/\/tcp$/, '');
    const listens = String(listeningPort(a, PUBLIC_SERVICE));
    if (inner !== listens) {
      problems.push(`${PUBLIC_SERVICE}: publishes container port ${inner} but listens on ${listens}`);
    }
    return problems;
  },

  'service URLs point at compose services, on the ports they listen on': (a) => {
    const problems: string[] = [];
    for (const { name } of PROCESSES) {
      const service = a.compose.services[name] ?? {};
      const env = environmentOf(service);
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const key of URL_VARS) {
        const value = env[key];
        if (value === undefined) continue;
        let url: URL;
        try {
          url = new URL(withDefaults(value));
        } catch {
          problems.push(`${name}: ${key} is not a URL`);
          continue;
        }
        const host = url.hostname;
        if (!a.compose.services[host]) {
          problems.push(`${name}: ${key} points at ${host}, which is not a service here`);
          continue;
        }
        const port = url.port || (url.protocol === 'http:' ? '80' : '');
        const listens = listeningPort(a, host);
        if (port !== listens) {
          problems.push(`${name}: ${key} uses port ${port}, but ${host} listens on ${String(listens)}`);
        }
        const mustWait = STARTUP_URL_VARS.has(key) || name === PUBLIC_SERVICE;
        if (mustWait && !deps.includes(host)) problems.push(`${name}: uses ${host} (${key}) but does not depend on it`);
      }
    }
    const gatewayEnv = environmentOf(a.compose.services[PUBLIC_SERVICE] ?? {});
    if (!gatewayEnv.AUTH_URL) problems.push(`${PUBLIC_SERVICE}: AUTH_URL must be set`);
    if (!gatewayEnv.REFERRAL_URL) problems.push(`${PUBLIC_SERVICE}: REFERRAL_URL must be set`);
    return problems;
  },

  'auth trusts X-Forwarded-For from its network only, not from everyone': (a) => {
    const auth: ProcessName = 'auth';
    const value = environmentOf(a.compose.services[auth] ?? {}).TRUSTED_PROXIES;
    if (value === undefined) {
      return [`${auth}: TRUSTED_PROXIES must be set, or every client shares the gateway address`];
    }
    const list = withDefaults(value)
      .split(',')
      .map((s) => s.trim());
    const open = list.filter((p) => TRUST_ALL.includes(p) || /\/0$/.test(p));
    return [
      ...(list.length === 0 || list[0] === '' ? [`${auth}: TRUSTED_PROXIES is empty`] : []),
      ...open.map((p) => `${auth}: TRUSTED_PROXIES trusts everyone (${p})`),
    ];
  },
} satisfies Record<string, Rule>;
