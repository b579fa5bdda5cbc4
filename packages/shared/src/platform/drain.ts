import { Server as NetServer } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * How long a draining server waits, after the most recent of its connections closed, for keep-alive
 * clients to send their next request (answered, then the connection closed) before it closes the
 * connections that stayed idle all along.
 */
export const DRAIN_QUIET_MS = 1000;
/** The whole wait is capped well inside the 10 s a process is given to stop. */
const DRAIN_MAX_MS = 5000;
/**
 * From the start of the drain, how long requests still open may take before their connections are
 * cut: a client that sent headers and then stalls would otherwise hold the process until its request
 * timeout, past the 9 s the process has to exit cleanly.
 */
export const DRAIN_FORCE_MS = 8000;
const CHECK_MS = 25;

/** How long before that cut the requests waiting on something are told to answer (beforeDrainCut). */
const CUT_NOTICE_MS = 250;

// Keyed by the HTTP server, which every encapsulated Fastify context shares.
const draining = new WeakSet<object>();
const beforeCut = new WeakMap<object, Array<() => void>>();

/**
 * Runs `callOff` shortly before a drain cuts the connections of requests still open: a request
 * that waits on something else (an upstream) can then be answered (a 503) instead of reset.
 */
export function beforeDrainCut(app: FastifyInstance, callOff: () => void): void {
  beforeCut.set(app.server, [...(beforeCut.get(app.server) ?? []), callOff]);
}

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
 * close only the connections left once none has closed for a quiet period; then let Fastify finish the
 * requests in flight and run its onClose hooks.
 */
export async function drainAndClose(
  app: FastifyInstance,
  quietMs = DRAIN_QUIET_MS,
  forceMs = DRAIN_FORCE_MS,
): Promise<void> {
  draining.add(app.server);
  const server = app.server;
  const forceAt = Date.now() + forceMs;
  if (server.listening) {
    // Closing a listening socket resets the connections still waiting in its accept queue, so one
    // pass over pending I/O accepts those queued by now (they are then answered); one that arrives
    // in the instant before the close is still reset by the kernel.
    await new Promise((resolve) => setImmediate(resolve));
    // net.Server's close stops listening and leaves the open connections alone.
    NetServer.prototype.close.call(server);
    // The quiet period restarts whenever a connection closes: while clients are still coming back
    // for their last answer, a busy (or slow) machine is given the time to let the others do so too.
    // It is counted in checks, each after a pass over pending I/O, not in wall time: a process that
    // waited long for the CPU must read the requests that arrived meanwhile before it calls their
    // connections idle (closing a socket with unread data resets it).
    const cap = Date.now() + Math.max(DRAIN_MAX_MS, quietMs);
    const checksNeeded = Math.ceil(quietMs / CHECK_MS);
    let open = await connectionCount(server);
    let quietChecks = 0;
    while (open > 0 && quietChecks < checksNeeded && Date.now() < cap) {
      await new Promise((resolve) => setTimeout(resolve, CHECK_MS));
      await new Promise((resolve) => setImmediate(resolve));
      const now = await connectionCount(server);
      quietChecks = now === open ? quietChecks + 1 : 0;
      open = now;
    }
    await new Promise((resolve) => setImmediate(resolve));
    if ('closeIdleConnections' in server && typeof server.closeIdleConnections === 'function')
      server.closeIdleConnections();
  }
  const notice = setTimeout(
    () => {
      for (const callOff of beforeCut.get(server) ?? []) callOff();
    },
    Math.max(0, forceAt - CUT_NOTICE_MS - Date.now()),
  );
  const force = setTimeout(
    () => {
      if ('closeAllConnections' in server && typeof server.closeAllConnections === 'function')
        server.closeAllConnections();
    },
    Math.max(0, forceAt - Date.now()),
  );
  try {
    await app.close();
  } finally {
    clearTimeout(notice);
    clearTimeout(force);
  }
}

function connectionCount(server: NetServer): Promise<number> {
  return new Promise((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count)));
}
