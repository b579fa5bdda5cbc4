import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { problemBody, PROBLEM_CONTENT_TYPE, type ErrorCode } from '../contracts/errors.js';
import { REQUEST_ID_HEADER } from '../contracts/headers.js';
import { requestIdFrom } from './request-id.js';

interface ConnectionError extends Error {
  code?: string;
}

const CLIENT_ERRORS: Record<string, { code: ErrorCode; detail: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    code: 'request_timeout',
    detail: 'The request was not received in time; the connection is closed.',
  },
  HPE_HEADER_OVERFLOW: { code: 'headers_too_large', detail: 'The request headers exceed the size limit.' },
};
const MALFORMED = { code: 'validation_failed', detail: 'The request is not well-formed HTTP/1.1.' } as const;

/** A problem answer for a request no route sees: its status, headers and body; the connection closes. */
function problemAnswer(code: ErrorCode, detail: string, requestId: string) {
  const problem = problemBody(code, detail);
  const body = JSON.stringify(problem);
  const headers = {
    'Content-Type': PROBLEM_CONTENT_TYPE,
    'Content-Length': String(Buffer.byteLength(body)),
    [REQUEST_ID_HEADER]: requestId,
    Connection: 'close',
  };
  return { status: problem.status, headers, body };
}

/** A problem answer written on the socket itself; the connection then closes. */
function writeProblem(socket: Socket, code: ErrorCode, detail: string, requestId: string): void {
  const { status, headers, body } = problemAnswer(code, detail, requestId);
  if (socket.writable) {
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines.join('')}\r\n${body}`);
  }
  socket.destroy();
}

/**
 * What Node's HTTP layer refuses before any route sees a request (a request not received within
 * the timeouts, headers too large, bytes that are not HTTP), answered as problem+json like every
 * other refusal, and the connection closed. Replaces Fastify's default, which answers plain JSON.
 */
export function answerClientError(error: ConnectionError, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { code, detail } = CLIENT_ERRORS[error.code ?? ''] ?? MALFORMED;
  // Every answer carries a request id. No request was parsed, so there is no client id to echo:
  // a new one, made as requestIdFrom makes them.
  writeProblem(socket, code, detail, randomUUID());
}

/**
 * The two requests Node answers by itself when nobody listens, bare and without a request id: an
 * `Expect` other than 100-continue (417), and `CONNECT` (the socket dropped unanswered). Both get
 * the problem+json every other refusal gets; `CONNECT` as any method a path does not take.
 */
export function answerUnroutable(server: Server): void {
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    // Through the response, which keeps its place behind answers to requests pipelined before it.
    const { status, headers, body } = problemAnswer(
      'expectation_failed',
      'Only "Expect: 100-continue" is supported.',
      requestIdFrom(request),
    );
    response.writeHead(status, headers).end(body);
  });
  server.on('connect', (request: IncomingMessage, socket: Socket) => {
    writeProblem(socket, 'not_found', `No route for CONNECT ${request.url ?? ''}.`, requestIdFrom(request));
  });
}
