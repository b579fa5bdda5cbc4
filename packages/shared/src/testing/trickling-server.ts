import net from 'node:net';
import type { Teardownable } from './test-database.js';

/**
 * An HTTP server that answers every request 200 with `body` (JSON), its headers and all but the
 * last `trickled` bytes at once, then one byte every 200 ms: each well within any sane silence
 * limit, the whole as slow as `trickled` makes it. Its URL.
 */
export async function tricklingServer(t: Teardownable, body: string, trickled = body.length): Promise<string> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`);
      let sent = body.length - trickled;
      socket.write(body.slice(0, sent));
      const timer = setInterval(() => {
        if (socket.destroyed || sent >= body.length) return clearInterval(timer);
        socket.write(body[sent]!);
        sent += 1;
      }, 200);
      socket.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}
