import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreUnreachableError } from './process.js';

export type RedisRole = 'api' | 'worker';

/** A single Redis or a Redis Cluster: every Redis user takes either. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: REDIS_URL, or the seed nodes of REDIS_CLUSTER_NODES when there are any. */
export type RedisTarget =
  string | { redisUrl: string; redisClusterNodes: ReadonlyArray<{ host: string; port: number }> };

/** Where the target is, for a message: its URL, or the cluster's seed nodes. */
export function describeRedis(target: RedisTarget): string {
  if (typeof target === 'string') return target;
  return target.redisClusterNodes.length > 0
    ? `cluster ${target.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
    : target.redisUrl;
}

/**
 * A cluster client: commands follow MOVED/ASK redirections, and while a master fails over (its
 * replica is promoted within the cluster's node timeout) they wait and retry within bounds instead
 * of failing at once. Keys of one script or queue share a hash tag, so each stays in one slot.
 */
function clusterOptions(role: RedisRole): ClusterOptions {
  const node = redisOptions(role);
  return {
    lazyConnect: true,
    // The ready check asks one node for its cluster state, and waits for good when that node is the
    // dead master of a failover; commands find their way by redirection instead.
    enableReadyCheck: false,
    // BullMQ's blocking commands need unlimited retries per request, as on a single node.
    redisOptions:
      role === 'api'
        ? { connectTimeout: node.connectTimeout, commandTimeout: 2000, maxRetriesPerRequest: 3 }
        : { connectTimeout: node.connectTimeout, maxRetriesPerRequest: null },
    // Not pipelined: a cluster pipeline is sent to one node as a whole, and through a master's
    // failover its commands are not redirected one by one the way single commands are.
    enableAutoPipelining: false,
    enableOfflineQueue: node.enableOfflineQueue,
    // An API command gives up within seconds (503); a worker's keeps trying through a failover.
    maxRedirections: role === 'api' ? 16 : 200,
    retryDelayOnMoved: 100,
    // A command whose node connection closed is sent again after this delay, to ride through a
    // failover. ioredis cannot tell one never written from one whose reply was lost, so on a cluster
    // a script may run twice when a connection breaks at that moment (a single Redis fails instead).
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2000,
    // A promoted replica is found within seconds even by a client that sent nothing meanwhile.
    slotsRefreshInterval: 2000,
    clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
  };
}

function newClient(target: RedisTarget, role: RedisRole): RedisClient {
  if (typeof target !== 'string' && target.redisClusterNodes.length > 0) {
    return new Cluster([...target.redisClusterNodes], clusterOptions(role));
  }
  return new Redis(typeof target === 'string' ? target : target.redisUrl, redisOptions(role));
}

/**
 * Options for the two kinds of connection. An API connection fails fast while Redis is away so the
 * request can answer 503 instead of hanging; a BullMQ worker connection must wait (BullMQ requires
 * `maxRetriesPerRequest: null` for blocking commands).
 */
export function redisOptions(role: RedisRole): RedisOptions {
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: 2000,
    // Reconnect quickly but not in a tight loop; capped so recovery after an outage takes seconds.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
  };
  // An API connection to a single Redis sends what the requests of one turn of the event loop asked
  // for in one write: under load a write to Redis (a system call and a wake-up on both sides) costs
  // more than the commands. A worker connection does not, as BullMQ's blocking commands would hold
  // up the rest; nor does a cluster connection (clusterOptions).
  return role === 'api'
    ? {
        ...common,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: 2000,
        enableAutoPipelining: true,
        // A command sent before the connection broke may have run: its reply is what was lost. Sent
        // again, a script that is not safe to run twice (a refresh token's rotation, a code's
        // spending, send-code's count and queue write) would run twice; it fails instead (503).
        autoResendUnfulfilledCommands: false,
      }
    : { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true };
}

/** Connects once, so that start-up fails with a clear message when Redis is not there. */
export async function connectRedis(target: RedisTarget, role: RedisRole): Promise<RedisClient> {
  const client = newClient(target, role);
  // Errors are reported through readiness and request failures; an unhandled 'error' event would crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new StoreUnreachableError('Redis', describeRedis(target), error);
  }
  return client;
}

/** A client that connects in the background; used where start-up must not wait (tests of failure). */
export function lazyRedis(target: RedisTarget, role: RedisRole): RedisClient {
  const client = newClient(target, role);
  client.on('error', () => undefined);
  client.connect().catch(() => undefined);
  return client;
}

/**
 * Readiness probe: waits briefly for a connection still being made, then PINGs a single Redis. A
 * cluster node answers PING while the cluster refuses every command (a master lost with no replica
 * to take over: CLUSTERDOWN), so a cluster is ready only while the node asked sees it `ok`.
 */
export async function pingRedis(client: RedisClient, waitMs = 1000): Promise<void> {
  if (client.status !== 'ready') {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        reject(new Error(`not connected (${client.status})`));
      }, waitMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      client.once('ready', onReady);
    });
  }
  if (client instanceof Cluster) {
    const info = await client.cluster('INFO');
    const state = /^cluster_state:(\w+)/m.exec(info)?.[1] ?? 'unknown';
    if (state !== 'ok') throw new Error(`the cluster's state is ${state}`);
  } else {
    await client.ping();
  }
}

/** Closes politely when connected (pending replies arrive), at once otherwise. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}
