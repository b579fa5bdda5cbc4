/** How compose runs each service: restarts, shutdown, health and start order, and Redis's settings. */
import { commandWords } from '../parsers/compose.js';
import type { Rule } from './rule.js';

export const serviceRules = {
  'redis keeps its data (appendonly yes) and never evicts (noeviction)': (a) => {
    const words = commandWords(a.compose.services.redis?.command) ?? [];
    const option = (key: string) => {
      const i = words.indexOf(`--${key}`);
      return i >= 0 ? words[i + 1] : undefined;
    };
    const problems: string[] = [];
    if (words[0] !== 'redis-server') {
      problems.push(`redis: command must start redis-server, got ${JSON.stringify(words)}`);
    }
    if (option('appendonly') !== 'yes') problems.push('redis: needs --appendonly yes');
    if (option('maxmemory-policy') !== 'noeviction') {
      problems.push('redis: needs --maxmemory-policy noeviction (BullMQ)');
    }
    return problems;
  },

  'every service restarts unless stopped and gets 10 s to shut down': (a) =>
    Object.entries(a.compose.services).flatMap(([name, service]) => [
      ...(service.restart === 'unless-stopped'
        ? []
        : [`${name}: restart must be unless-stopped, got ${String(service.restart)}`]),
      ...(service.stop_grace_period === '10s'
        ? []
        : [`${name}: stop_grace_period must be 10s, got ${String(service.stop_grace_period)}`]),
    ]),

  'every service has a CMD-SHELL healthcheck': (a) =>
    Object.entries(a.compose.services).flatMap(([name, service]) => {
      const test = service.healthcheck?.test;
      if (service.healthcheck?.disable) return [`${name}: healthcheck disabled`];
      if (!Array.isArray(test) || test[0] !== 'CMD-SHELL' || test.length !== 2 || !String(test[1]).trim()) {
        return [`${name}: healthcheck.test must be ["CMD-SHELL", "<command>"], got ${JSON.stringify(test)}`];
      }
      return [];
    }),

  'depends_on waits for healthy services, without cycles': (a) => {
    const problems: string[] = [];
    const graph = new Map<string, string[]>();
    for (const [name, service] of Object.entries(a.compose.services)) {
      const deps = service.depends_on;
      if (deps === undefined) {
        graph.set(name, []);
        continue;
      }
      if (Array.isArray(deps)) {
        problems.push(`${name}: depends_on is a list; use the long form with condition: service_healthy`);
        graph.set(name, deps);
        continue;
      }
      graph.set(name, Object.keys(deps));
      for (const [dep, spec] of Object.entries(deps)) {
        if (spec?.condition !== 'service_healthy') {
          problems.push(`${name}: depends on ${dep} with condition ${String(spec?.condition)}`);
        }
        const target = a.compose.services[dep];
        if (!target) problems.push(`${name}: depends on unknown service ${dep}`);
        else if (!target.healthcheck?.test) problems.push(`${name}: depends on ${dep}, which has no healthcheck`);
      }
    }
    const visit = (node: string, trail: string[]): void => {
      if (trail.includes(node)) {
        problems.push(`dependency cycle: ${[...trail, node].join(' -> ')}`);
        return;
      }
      for (const next of graph.get(node) ?? []) visit(next, [...trail, node]);
    };
    for (const node of graph.keys()) visit(node, []);
    return [...new Set(problems)];
  },
} satisfies Record<string, Rule>;
