import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * How a fake provider answers the next requests: as the real one does (`ok`), with a 500, not at all
 * (`hang`: it reads the request and never answers), or with a body that is not what its API
 * documents (`malformed`). Provider-specific refusals are set on each fake (`refuse`).
 */
export type FakeBehaviour = 'ok' | 'http500' | 'hang' | 'malformed' | 'null';

/** A message the fake accepted, as the provider would have sent it to the phone. */
export interface AcceptedSms {
  /** The provider's id of the message, as its answer gave it. */
  providerMessageId: string;
  /** E.164, whatever form the provider's API takes it in. */
  to: string;
  /** The text (SMS providers) or the code (Telegram Gateway). */
  text: string;
  /** Every request parameter as received. */
  params: Record<string, string>;
  /** Where the provider would post receipts for it, when the request named a URL. */
  callbackUrl?: string;
}

export interface FakeRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface FakeAnswer {
  status: number;
  body: string;
  contentType?: string;
}

/**
 * An HTTP server on 127.0.0.1 that plays one provider's API for tests: each fake checks what the
 * real provider checks (method, path, credentials, parameter names, phone format) and answers in its
 * documented shapes. Requests it had to refuse for a reason the real API would also refuse are kept
 * in `violations`, so a test can assert that the client never sent one.
 */
export class FakeProviderServer {
  behaviour: FakeBehaviour = 'ok';
  readonly accepted: AcceptedSms[] = [];
  readonly violations: string[] = [];
  /** Every request that reached the fake, answered or not. */
  requests = 0;
  private server: Server | undefined;
  private port = 0;
  private readonly sockets = new Set<Socket>();
  private readonly listeners = new Set<() => void>();
  private sequence = 0;

  constructor(private readonly handle: (request: FakeRequest) => FakeAnswer | Promise<FakeAnswer>) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Listens (again, on the same port after `stop`). */
  async start(): Promise<this> {
    const server = createServer((request, response) => void this.serve(request, response));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Switched off: the port refuses connections, and open ones (a hanging request too) are cut. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A fresh id for an accepted message, in the provider's style. */
  nextId(format: (n: number) => string): string {
    this.sequence += 1;
    return format(this.sequence);
  }

  accept(message: AcceptedSms): void {
    this.accepted.push(message);
    for (const listener of [...this.listeners]) listener();
  }

  violation(reason: string): void {
    this.violations.push(reason);
  }

  /** Resolves once `count` messages were accepted in all, or rejects at the deadline. */
  waitForAccepted(count: number, timeoutMs = 10_000): Promise<AcceptedSms[]> {
    if (this.accepted.length >= count) return Promise.resolve(this.accepted);
    return new Promise((resolve, reject) => {
      const listener = () => {
        if (this.accepted.length < count) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(this.accepted);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`${count} messages not accepted within ${timeoutMs} ms (got ${this.accepted.length})`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  private async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    this.requests += 1;
    if (this.behaviour === 'hang') return; // never answered; `stop` or the client's timeout ends it
    if (this.behaviour === 'http500') {
      response.writeHead(500, { 'content-type': 'text/html' }).end('<html><body>Internal Server Error</body></html>');
      return;
    }
    if (this.behaviour === 'malformed') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status": "OK", "sms": ');
      return;
    }
    if (this.behaviour === 'null') {
      // JSON, but not the object every provider documents.
      response.writeHead(200, { 'content-type': 'application/json' }).end('null');
      return;
    }
    const url = new URL(request.url ?? '/', 'http://fake');
    try {
      const answer = await this.handle({
        method: request.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: request.headers,
        body: Buffer.concat(chunks),
      });
      response
        .writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json; charset=utf-8' })
        .end(answer.body);
    } catch (error) {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`fake failed: ${(error as Error).message}`);
    }
  }
}

/** The parameters of a request: its query and, for a form body, the body's (body wins). */
export function requestParams(request: FakeRequest): URLSearchParams {
  const params = new URLSearchParams(request.query);
  const type = String(request.headers['content-type'] ?? '');
  if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [name, value] of new URLSearchParams(request.body.toString('utf8'))) params.set(name, value);
  }
  return params;
}

/** Posts a receipt to `url` as the provider would, returning the status and body of the answer. */
export async function postReceipt(
  url: string,
  receipt: { headers: Record<string, string>; body: string },
): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { method: 'POST', headers: receipt.headers, body: receipt.body });
  return { status: response.status, body: await response.text() };
}
