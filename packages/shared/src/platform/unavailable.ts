import { UPSTREAM_ANSWER_TIMEOUT, UPSTREAM_CALLED_OFF, UPSTREAM_NOT_SENT } from './upstream-pool.js';

/**
 * The one place that tells a failure of something this process depends on (a store, a service)
 * from a bug: network errors, PostgreSQL's and Redis's transient conditions, undici's timeouts.
 */

/** The other side is not there, or stopped answering. */
const NETWORK_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE'];
/** undici (HTTP to another service): connect, headers and body timeouts, a socket closed under a request. */
const HTTP_CLIENT_CODES = [
  // UpstreamPool's own: a request that found no free connection in time and was never sent.
  UPSTREAM_NOT_SENT,
  // Its own too: a whole answer that took too long, and a request a stopping gateway called off.
  UPSTREAM_ANSWER_TIMEOUT,
  UPSTREAM_CALLED_OFF,
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
];
const POSTGRES_TRANSIENT = [
  // Shutting down, starting up, connection failures, too many connections.
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
  '53300',
  // Still losing a serialization race after the retries: the client may simply try again.
  '40001',
  '40P01',
  // PostgreSQL gave up a wait: lock_timeout (lock_not_available), statement_timeout (query_canceled).
  '55P03',
  '57014',
];
/** At start-up also: the database does not exist, or the credentials are refused. */
const POSTGRES_AT_START = ['3D000', '28P01', '28000'];
const TRANSIENT_MESSAGES = new RegExp(
  [
    "Stream isn't writeable",
    'Connection is closed',
    'Command timed out',
    'Reached the max retries',
    'Connection terminated',
    'timeout exceeded when trying to connect',
    'Query read timeout',
    'Client has encountered a connection error',
    // A Redis Cluster client that ran out of redirections while a master failed over: its last
    // error may be a MOVED to the replica being promoted, a CLUSTERDOWN or a timeout.
    'Too many Cluster redirections',
    'Failed to refresh slots cache',
    'None of startup nodes is available',
    "Cluster isn't ready",
  ].join('|'),
  'i',
);
/**
 * Redis's own transient refusals: the cluster has a slot without a master, a slot is moving, the
 * node is loading its data, a replica lost its master, or a write reached a node that was a master
 * a moment ago. Each names itself in the first word of the reply.
 */
const REDIS_TRANSIENT_REPLY = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY) /;

const TRANSIENT = new Set([...NETWORK_CODES, ...HTTP_CLIENT_CODES, ...POSTGRES_TRANSIENT]);
const UNREACHABLE_AT_START = new Set([...NETWORK_CODES, ...POSTGRES_AT_START]);

/** The error and its causes, outermost first (a few levels: libraries wrap once or twice). */
function* chain(error: unknown): Generator<{ code: unknown; name: unknown; message: string }> {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== null && typeof current === 'object'; depth += 1) {
    const { code, name, message } = current as { code?: unknown; name?: unknown; message?: unknown };
    yield { code, name, message: typeof message === 'string' ? message : '' };
    current = (current as { cause?: unknown }).cause;
  }
}

/** A dependency is down or not answering: the request cannot succeed now but may in a moment (503). */
export function isDependencyUnavailable(error: unknown): boolean {
  for (const { code, name, message } of chain(error)) {
    if (typeof code === 'string' && TRANSIENT.has(code)) return true;
    if (name === 'MaxRetriesPerRequestError' || TRANSIENT_MESSAGES.test(message)) return true;
    if (REDIS_TRANSIENT_REPLY.test(message)) return true;
  }
  return false;
}

/** At start-up: the store cannot be reached or used at all, which the process explains as advice. */
export function isUnreachableAtStart(error: unknown): boolean {
  for (const { code, message } of chain(error)) {
    if (typeof code === 'string') return UNREACHABLE_AT_START.has(code);
    if (/timeout/i.test(message)) return true;
  }
  return false;
}
