import { Server as NetServer } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * How long a draining server waits for keep-alive clients to send their next request (answered,
 * then the connection closed) before it closes the connections that stayed idle all along.
 */
export const DRAIN_QUIET_MS = 1000;

// Keyed by the HTTP server, which every encapsulated Fastify context shares.
const draining = new WeakSet<object>();

export function isDraining(app: FastifyInstance): boolean {
  return draining.has(app.server);
}

/**
 * Shuts an HTTP app down without resetting anyone's request.
 *
 * `http.Server.close()` (Node ≥ 19) destroys every idle keep-alive connection at once. A client
 * that has just written its next request on such a connection then sees a reset, not an answer.
 * So: stop accepting connections first (new ones are refused, which any client handles); answer
 * whatever arrives on open connections with `Connection: close`, so each closes after its answer;
 * close only the connections that stayed idle through a quiet period; then let Fastify finish the
 * requests in flight and run its onClose hooks.
 */
export async function drainAndClose(app: FastifyInstance, quietMs = DRAIN_QUIET_MS): Promise<void> {
  draining.add(app.server);
  const server = app.server;
  if (server.listening) {
    // net.Server's close stops listening and leaves the open connections alone.
    NetServer.prototype.close.call(server);
    const deadline = Date.now() + quietMs;
    while (Date.now() < deadline && (await connectionCount(server)) > 0) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    if ('closeIdleConnections' in server && typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
  }
  await app.close();
}

function connectionCount(server: NetServer): Promise<number> {
  return new Promise((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count)));
}
