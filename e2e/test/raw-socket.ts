import { connect, type Socket } from 'node:net';

/** A raw connection that records what the server sent and when the server let it go. */
export interface RawConnection {
  socket: Socket;
  received: () => string;
  /** Milliseconds from connecting to the close. */
  closed: Promise<number>;
  /** Resolves with everything received once `predicate` holds for it; rejects at the deadline. */
  waitFor: (predicate: (data: string) => boolean, timeoutMs: number) => Promise<string>;
}

export function openRaw(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const opened = Date.now();
    let data = '';
    const waiters = new Set<() => void>();
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      for (const wake of waiters) wake();
    });
    // A reset counts as closed too; what matters is that the server let go.
    socket.on('error', () => undefined);
    const closed = new Promise<number>((done) =>
      socket.once('close', () => {
        for (const wake of waiters) wake();
        done(Date.now() - opened);
      }),
    );
    const waitFor = (predicate: (data: string) => boolean, timeoutMs: number) =>
      new Promise<string>((done, fail) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          fail(new Error(`nothing matching arrived within ${timeoutMs} ms; got ${JSON.stringify(data.slice(0, 300))}`));
        }, timeoutMs);
        const check = () => {
          if (!predicate(data)) return;
          clearTimeout(timer);
          waiters.delete(check);
          done(data);
        };
        waiters.add(check);
        check();
      });
    socket.once('connect', () => resolve({ socket, received: () => data, closed, waitFor }));
    socket.once('error', reject);
  });
}

/** The promise's value, or 'timeout' if it has not settled within `ms`. */
export const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([
    promise,
    new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), Math.max(0, ms)).unref()),
  ]);

/** A whole HTTP/1.1 answer with a Content-Length body, after any interim (1xx) answers. */
export const completeAnswer = (data: string): boolean => {
  const final = data.replace(/^(HTTP\/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
  const end = final.indexOf('\r\n\r\n');
  const length = /\r\ncontent-length: (\d+)/i.exec(final.slice(0, end + 2))?.[1];
  return end >= 0 && length !== undefined && Buffer.byteLength(final.slice(end + 4), 'latin1') >= Number(length);
};
