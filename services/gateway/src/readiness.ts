import type { FastifyInstance } from 'fastify';
import type { Config } from '@refstack/shared/contracts';
import type { HealthCheck } from '@refstack/shared/platform';
import type { Upstream } from './upstream-proxy.js';
import { CHECK_TIMEOUT_MS, CONNECT_TIMEOUT_MS, UpstreamPool } from '@refstack/shared/platform';

/** Under the readiness check's own limit, so that one silent instance is reported, not waited for. */
const PROBE_TIMEOUT_MS = CHECK_TIMEOUT_MS - 500;

export type UpstreamPools = Record<Upstream, UpstreamPool>;

/** Each service's instances (AUTH_URLS, REFERRAL_URLS), probed every GATEWAY_HEALTH_INTERVAL_MS. */
export function upstreamPools(config: Config, timeoutMs: number): UpstreamPools {
  const options = {
    pool: {
      connections: 128,
      keepAliveTimeout: 30_000,
      connectTimeout: CONNECT_TIMEOUT_MS,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    },
    probeIntervalMs: config.gateway.healthIntervalMs,
    ejectMs: config.gateway.ejectMs,
    probeTimeoutMs: PROBE_TIMEOUT_MS,
  };
  return {
    auth: new UpstreamPool('auth', config.urls.authInstances, options),
    referral: new UpstreamPool('referral', config.urls.referralInstances, options),
  };
}

/**
 * A service is ready when one of its instances is; the details name each instance with its own
 * report (or why it is out). Asking also updates the instances' standing, as a probe does.
 */
export function upstreamChecks(pools: UpstreamPools): Record<Upstream, HealthCheck> {
  const check = (pool: UpstreamPool) => async () => {
    const probes = await pool.probeAll();
    const instances = Object.fromEntries(
      probes.map(({ instance, ready, details }) => [
        instance.base,
        ready ? { status: 'up', checks: details } : { status: 'down', error: details },
      ]),
    );
    if (!probes.some((probe) => probe.ready)) {
      const reasons = probes.map(({ instance, details }) => `${instance.base}: ${String(details)}`);
      throw new Error(probes.length === 1 ? String(probes[0]?.details) : `no instance ready (${reasons.join('; ')})`);
    }
    return pool.instances.length === 1 ? probes[0]?.details : { instances };
  };
  return { auth: check(pools.auth), referral: check(pools.referral) };
}

const POOLS = new WeakMap<FastifyInstance, UpstreamPools>();

export function rememberPools(app: FastifyInstance, pools: UpstreamPools): void {
  POOLS.set(app, pools);
}

/** The pools of a gateway app, for its operations port's report. */
export function poolsOf(app: FastifyInstance): UpstreamPools {
  const pools = POOLS.get(app);
  if (!pools) throw new Error('not a gateway app');
  return pools;
}
