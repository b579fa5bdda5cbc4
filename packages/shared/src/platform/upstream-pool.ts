import { Pool, request, type Dispatcher } from 'undici';

/**
 * The code of a request that waited for a free connection to its instance longer than the caller
 * allowed, and was then dropped unsent (undici then closes the connection it would have used).
 */
export const UPSTREAM_NOT_SENT = 'UPSTREAM_NOT_SENT';

/**
 * The code of a request whose whole answer did not arrive within its deadline. undici's own timers
 * bound the wait for the headers and each silence between chunks, not the answer: an instance that
 * sends its headers and then a byte now and then would hold the request, and its client, forever.
 */
export const UPSTREAM_ANSWER_TIMEOUT = 'UPSTREAM_ANSWER_TIMEOUT';

/** The code of a request its caller called off (a stopping gateway answering its clients first). */
export const UPSTREAM_CALLED_OFF = 'UPSTREAM_CALLED_OFF';

/**
 * How long a request may wait for a free connection to its instance (all of the pool's busy)
 * before it is dropped unsent: an instance that has held every connection that long is stalled or
 * far past its capacity, and the request may go to another instance or be answered 503 at once,
 * instead of queueing without limit (undici's queue has none) and acting long after its client
 * left. Once sent, a request has its own answer timeout, as the timeouts that nest inside it expect.
 */
export const SEND_WITHIN_MS = 2000;

/**
 * How long a connection to an instance may take to open: well inside SEND_WITHIN_MS, so that an
 * instance that takes no connections (gone, or behind a lost route) fails as a connect timeout and
 * is taken out, instead of looking like a busy pool, which stays in rotation. undici's connect
 * timer is coarse (it fires up to about half a second late), hence half a second, not one.
 */
export const CONNECT_TIMEOUT_MS = 500;

/** Errors of a request that never reached the instance, so it may go to another whatever its method. */
const NOT_REACHED = new Set([
  UPSTREAM_NOT_SENT,
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/** Errors of a connection lost mid-request: the instance may have acted on it. */
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const TIMED_OUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', UPSTREAM_ANSWER_TIMEOUT]);

/** How a request to an instance failed, which decides whether it may be sent to another. */
export type FailureKind = 'not_reached' | 'dropped' | 'timed_out' | 'other';

function errorCode(error: unknown): string {
  const own = (error as { code?: unknown }).code;
  if (typeof own === 'string') return own;
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof cause === 'string' ? cause : '';
}

/** One instance's answer to a readiness probe: its own report, or why it is not ready. */
export interface ProbeReport {
  instance: UpstreamInstance;
  ready: boolean;
  details: unknown;
}

/** How an instance stands: taking requests, or out until a probe finds it ready again. */
export type InstanceStatus = 'in' | 'out';

export interface UpstreamInstance {
  readonly base: string;
  readonly pool: Pool;
  status: InstanceStatus;
  /** Why it was taken out, while it is. */
  reason: string | undefined;
  /** When it was taken out (ms since the epoch). */
  since: number;
}

export interface PoolLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface UpstreamPoolOptions {
  /** undici pool settings of each instance. */
  pool: Pool.Options;
  /** How often every instance's /health/ready is asked. */
  probeIntervalMs: number;
  /** The least time an instance that failed stays out before a probe may bring it back. */
  ejectMs: number;
  probeTimeoutMs: number;
  now?: () => number;
}

/**
 * The instances of one service behind the gateway. Requests go round-robin over those in service.
 * Passive health: an instance that refused a connection, timed out or dropped one is taken out at
 * once. Active health: every instance's `/health/ready` is asked every `probeIntervalMs`; an
 * instance that is not ready is taken out, and one that is out comes back on its first ready probe
 * after at least `ejectMs`. When every instance is out, they are all tried anyway: a stale mark
 * must not turn a working service into a 503.
 */
export class UpstreamPool {
  readonly instances: UpstreamInstance[];
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<ProbeReport[]> | undefined;
  private readonly now: () => number;
  private log: PoolLogger | undefined;

  constructor(
    readonly service: string,
    bases: readonly string[],
    private readonly options: UpstreamPoolOptions,
  ) {
    if (bases.length === 0) throw new Error(`${service}: no upstream instance`);
    this.now = options.now ?? Date.now;
    this.instances = bases.map((base) => ({
      base,
      pool: new Pool(base, options.pool),
      status: 'in',
      reason: undefined,
      since: 0,
    }));
  }

  /** Where instances taken out and brought back are told (the app's logger, once it exists). */
  setLog(log: PoolLogger): void {
    this.log = log;
  }

  /** Starts the active probes; they keep no process alive on their own. */
  start(): void {
    if (this.timer || this.options.probeIntervalMs <= 0) return;
    this.timer = setInterval(() => void this.probeAll(), this.options.probeIntervalMs);
    this.timer.unref();
  }

  /** The order in which to try instances for one request: those in service first, round-robin. */
  order(): UpstreamInstance[] {
    const count = this.instances.length;
    const start = this.next;
    const ordered = inServiceFirst(Array.from({ length: count }, (_, i) => this.instances[(start + i) % count]!));
    // The next request starts after the one chosen, so that those in service share the requests
    // evenly: starting after the first of the list would send an instance that follows one taken
    // out its share and that one's too.
    const chosen = ordered[0]!;
    this.next = chosen.status === 'in' ? (this.instances.indexOf(chosen) + 1) % count : (start + 1) % count;
    return ordered;
  }

  /** Those in service first, each part in its listed order; the round-robin does not move. */
  inServiceFirst(): UpstreamInstance[] {
    return inServiceFirst(this.instances);
  }

  /** Passive health: the instance failed a request in a way that says it is unwell. */
  takeOut(instance: UpstreamInstance, reason: string): void {
    if (instance.status === 'out') return;
    instance.status = 'out';
    instance.reason = reason;
    instance.since = this.now();
    this.log?.warn({ upstream: this.service, instance: instance.base, reason }, 'upstream instance taken out');
  }

  /**
   * Passive health from a failed request: an instance that could not be reached, dropped the
   * connection or timed out is taken out. Says how it failed.
   */
  failed(instance: UpstreamInstance, error: unknown): FailureKind {
    const code = errorCode(error);
    const kind: FailureKind = NOT_REACHED.has(code)
      ? 'not_reached'
      : DROPPED.has(code)
        ? 'dropped'
        : TIMED_OUT.has(code)
          ? 'timed_out'
          : 'other';
    // A request that waited too long for a connection says the instance is busy, not that it is
    // unwell: taking it out would move its load onto the others until they fill up in turn.
    if (kind !== 'other' && code !== UPSTREAM_NOT_SENT) this.takeOut(instance, code);
    return kind;
  }

  private bringBack(instance: UpstreamInstance): void {
    if (instance.status === 'in') return;
    instance.status = 'in';
    instance.reason = undefined;
    this.log?.info({ upstream: this.service, instance: instance.base }, 'upstream instance back in service');
  }

  /**
   * Asks every instance whether it is ready; resolves with each one's report, within
   * `probeTimeoutMs` however an instance fails to answer. Callers that ask while a round is under
   * way share it: readiness asked a thousand times at once probes each instance once.
   */
  probeAll(): Promise<ProbeReport[]> {
    this.probing ??= this.probeRound().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private probeRound(): Promise<ProbeReport[]> {
    return Promise.all(
      this.instances.map(async (instance) => {
        const outcome = await ready(instance.base, this.options.probeTimeoutMs);
        if (!outcome.ready) this.takeOut(instance, outcome.error);
        else if (this.now() - instance.since >= this.options.ejectMs) this.bringBack(instance);
        return { instance, ready: outcome.ready, details: outcome.ready ? outcome.checks : outcome.error };
      }),
    );
  }

  /**
   * Ends every request to the instances at once, sent or waiting for a connection, with
   * UPSTREAM_CALLED_OFF; the pools take no more. For a stopping process.
   */
  callOff(): void {
    clearInterval(this.timer);
    const error = new UpstreamError(UPSTREAM_CALLED_OFF, 'the request was called off');
    for (const { pool } of this.instances) if (!pool.destroyed) void pool.destroy(error).catch(() => undefined);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.instances.map(({ pool }) => (pool.destroyed ? undefined : pool.close())));
  }
}

function inServiceFirst(instances: readonly UpstreamInstance[]): UpstreamInstance[] {
  return [...instances.filter((i) => i.status === 'in'), ...instances.filter((i) => i.status === 'out')];
}

async function ready(
  base: string,
  timeoutMs: number,
): Promise<{ ready: true; checks: unknown } | { ready: false; error: string }> {
  // One deadline for the whole probe, the connection included: an instance that accepts
  // connections and never answers (stopped, or behind a lost route) must not hold readiness up.
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await request(`${base}/health/ready`, { signal });
    const body = (await res.body.json().catch(() => ({}))) as { checks?: unknown };
    if (res.statusCode !== 200) return { ready: false, error: `not ready (HTTP ${res.statusCode})` };
    return { ready: true, checks: body.checks };
  } catch (error) {
    if (signal.aborted) return { ready: false, error: `no answer within ${timeoutMs} ms` };
    return { ready: false, error: (error as Error).message || 'unreachable' };
  }
}

class UpstreamError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** An instance's answer, read whole: API answers are small JSON documents. */
export interface UpstreamAnswer {
  status: number;
  /** Names and values alternating, as they arrived. */
  rawHeaders: Buffer[];
  payload: Buffer;
}

export interface RequestWholeOptions {
  /** How long the request may wait for a free connection (SEND_WITHIN_MS by default). */
  sendWithinMs?: number;
  /** How long its whole answer may take once it is sent; unbounded beyond undici's timers if not given. */
  answerWithinMs?: number;
  /**
   * The moment (`performance.now()`) by which the whole answer must have arrived, however long the
   * request waited to be sent: for a caller with one deadline for the whole call.
   */
  answerBy?: number;
}

/**
 * One request through an instance's pool, its answer collected whole, dropped unsent when no
 * connection frees up within `sendWithinMs` (see SEND_WITHIN_MS), and given up when its whole
 * answer has not arrived within `answerWithinMs` of being sent. A plain dispatch handler instead
 * of `pool.request()`: that is what can tell a request still waiting for a connection from one
 * already written, and it builds no response stream, header object or async resource per request.
 * Connection errors and undici's own timeouts are the pool's (or the options'), as with `request()`.
 */
export function requestWhole(
  pool: Dispatcher,
  options: Dispatcher.DispatchOptions,
  { sendWithinMs = SEND_WITHIN_MS, answerWithinMs, answerBy }: RequestWholeOptions = {},
): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let rawHeaders: Buffer[] = [];
    const chunks: Buffer[] = [];
    // Set once the request has an end: an error handed to undici's abort, or the caller's reject.
    let ended: Error | undefined;
    let abortSent: ((error: Error) => void) | undefined;
    let answerTimer: NodeJS.Timeout | undefined;
    const end = (error: Error) => {
      if (ended) return;
      ended = error;
      clearTimeout(waiting);
      clearTimeout(answerTimer);
      // Once connected, undici's abort ends the request and reports the error through onError;
      // before that, nothing reaches the instance, and onConnect aborts it when a connection comes.
      if (abortSent) abortSent(error);
      else reject(error);
    };
    const waiting = setTimeout(
      () =>
        end(
          new UpstreamError(
            UPSTREAM_NOT_SENT,
            `no free connection to the instance within ${sendWithinMs} ms; not sent`,
          ),
        ),
      sendWithinMs,
    );
    pool.dispatch(options, {
      onConnect: (abort) => {
        clearTimeout(waiting);
        const within = answerBy === undefined ? answerWithinMs : answerBy - performance.now();
        // The connection came after the caller's deadline: sent now, it would be given up at once,
        // yet could act at the instance.
        if (within !== undefined && within <= 0)
          end(new UpstreamError(UPSTREAM_NOT_SENT, 'a connection came too late; not sent'));
        // Aborted here, a request is never written: nothing reaches the instance.
        if (ended) return abort(ended);
        abortSent = abort;
        if (within !== undefined) {
          answerTimer = setTimeout(
            () => end(new UpstreamError(UPSTREAM_ANSWER_TIMEOUT, `no whole answer within ${Math.round(within)} ms`)),
            within,
          );
        }
      },
      onHeaders: (statusCode, headers) => {
        // 1xx answers are interim; the final answer follows on the same request.
        if (statusCode >= 200) {
          status = statusCode;
          rawHeaders = headers;
        }
        return true;
      },
      onData: (chunk) => {
        chunks.push(chunk);
        return true;
      },
      onComplete: () => {
        clearTimeout(answerTimer);
        resolve({ status, rawHeaders, payload: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      },
      onError: (error) => {
        clearTimeout(waiting);
        clearTimeout(answerTimer);
        reject(error);
      },
    });
  });
}
