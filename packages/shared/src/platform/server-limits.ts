import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../contracts/config.js';

/**
 * What a listening socket may cost: how long a client may take to send a request, how long a
 * connection may sit silent, and how many there may be. Without these, a client that sends its
 * headers and then its body a byte at a time (or never) holds a connection for good.
 */
export interface ServerLimits {
  /** The request's headers must be complete this long after it began (or the connection opened). */
  headersTimeoutMs: number;
  /**
   * The whole request, headers and body, must have arrived by then. Bounds receiving the request
   * only: the time its handler then takes (an upstream's answer) is not counted.
   */
  requestTimeoutMs: number;
  /**
   * A socket with no byte in either direction for this long is closed. Waiting for an upstream is
   * silent too, so this must outlast the longest such wait.
   */
  idleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (behind a balancer: longer than its idle timeout). */
  keepAliveTimeoutMs: number;
  /** Connections beyond this many are closed as they arrive; 0 for no cap. */
  maxConnections: number;
  /** The request line and headers together may take this many bytes (then 431). */
  maxHeaderBytes: number;
}

/**
 * The public port takes Node's usual 16 KiB of headers; the services' own ports take twice that,
 * so that a request the gateway accepted is never refused behind it for what the gateway adds
 * (the client's address, the request id, an Authorization made from the legacy cookie).
 */
export const EDGE_MAX_HEADER_BYTES = 16_384;
const SERVICE_MAX_HEADER_BYTES = 2 * EDGE_MAX_HEADER_BYTES;

/**
 * How often Node looks for requests past their headers or request timeout; the timeouts hold to
 * within this (Node's default is 30 s). One walk over the open connections per second is cheap.
 */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1000;

/** The services' own ports: only the gateway and other services call them. */
export function defaultServerLimits(config: Config): ServerLimits {
  return {
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 15_000,
    idleTimeoutMs: config.upstreamTimeoutMs + 30_000,
    keepAliveTimeoutMs: 72_000,
    maxConnections: 0,
    maxHeaderBytes: SERVICE_MAX_HEADER_BYTES,
  };
}

/** The Fastify options that set the limits (all but the cap, which is the server's own property). */
export function serverLimitOptions(
  limits: ServerLimits,
): Pick<FastifyServerOptions, 'requestTimeout' | 'connectionTimeout' | 'keepAliveTimeout'> & { http: ServerOptions } {
  return {
    // Fastify sets these two on the server itself (its default request timeout is none).
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    // Only a server's constructor takes the checking interval; Fastify passes `http` to it.
    http: {
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
      maxHeaderSize: limits.maxHeaderBytes,
    },
  };
}

/**
 * A keep-alive connection waiting for its client's next request holds a place under the cap for up
 * to the keep-alive timeout: one client could keep every place with one request per connection a
 * minute. When the open connections come within a tenth of the cap, those that answered every
 * request they brought and have waited at least IDLE_BEFORE_CLOSE_MS for another are closed (their
 * clients open a new one when they next ask). A connection yet to send its first request is left
 * to the headers timeout, one with a request in flight is never closed here, and the wait lets a
 * next request whose headers are on their way arrive first (Node names a request only once its
 * headers are complete).
 */
export const IDLE_BEFORE_CLOSE_MS = 1000;

export function closeIdleNearCap(server: Server, cap: number): void {
  const threshold = Math.max(1, cap - Math.ceil(cap / 10));
  let open = 0;
  // Requests in flight per connection; a connection that has answered them all is idle, since then.
  const inFlight = new Map<Socket, number>();
  const idleSince = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    open += 1;
    socket.once('close', () => {
      open -= 1;
      inFlight.delete(socket);
      idleSince.delete(socket);
    });
    if (open < threshold) return;
    const before = Date.now() - IDLE_BEFORE_CLOSE_MS;
    for (const [waiting, since] of idleSince) {
      if (since > before) continue;
      idleSince.delete(waiting);
      waiting.destroy();
    }
  });
  server.on('request', (request, response) => {
    const socket = request.socket;
    idleSince.delete(socket);
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      if (left > 0) return void inFlight.set(socket, left);
      inFlight.delete(socket);
      if (!socket.destroyed) idleSince.set(socket, Date.now());
    });
  });
}
