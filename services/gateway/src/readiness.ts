import { request } from 'undici';
import type { Config } from '@refstack/shared/contracts';
import type { HealthCheck } from '@refstack/shared/platform';
import type { Upstream } from './upstream-proxy.js';

const CHECK_TIMEOUT_MS = 2000;

async function upstreamReady(base: string): Promise<unknown> {
  const res = await request(`${base}/health/ready`, {
    headersTimeout: CHECK_TIMEOUT_MS,
    bodyTimeout: CHECK_TIMEOUT_MS,
  });
  const body = (await res.body.json()) as { checks?: unknown };
  if (res.statusCode !== 200) throw new Error(`not ready (HTTP ${res.statusCode})`);
  return body.checks;
}

/** The gateway is ready when both services are; their own reports are the details. */
export function upstreamChecks(config: Config): Record<Upstream, HealthCheck> {
  return {
    auth: () => upstreamReady(config.urls.auth),
    referral: () => upstreamReady(config.urls.referral),
  };
}
