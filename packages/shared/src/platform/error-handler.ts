import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  AppError,
  ERROR_CATALOG,
  problemBody,
  PROBLEM_CONTENT_TYPE,
  type ErrorCode,
  type FieldError,
} from '../contracts/errors.js';
import { isDependencyUnavailable } from './unavailable.js';

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

function fieldErrors(issues: readonly ValidationIssue[], context: string | undefined): FieldError[] {
  return issues.map((issue) => {
    const path = (issue.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
    const missing = issue.params?.['missingProperty'];
    const extra = issue.params?.['additionalProperty'];
    const field =
      typeof missing === 'string'
        ? [path, missing].filter(Boolean).join('.')
        : typeof extra === 'string'
          ? [path, extra].filter(Boolean).join('.')
          : path || context || 'body';
    const message = typeof extra === 'string' ? 'is not an accepted property' : (issue.message ?? 'is invalid');
    return { field, message };
  });
}

/** Maps anything thrown in a request to problem+json; 5xx answers never carry internals. */
export function toProblem(error: unknown): {
  code: ErrorCode;
  detail: string;
  status: number;
  errors?: FieldError[];
  retryAfter?: number;
  extensions?: Record<string, unknown>;
} {
  if (error instanceof AppError) {
    return { code: error.code, status: error.status, detail: error.message, ...error.extras };
  }
  const err = error as Partial<FastifyError> & {
    validation?: ValidationIssue[];
    validationContext?: string;
    type?: string;
  };
  if (err && Array.isArray(err.validation)) {
    const errors = fieldErrors(err.validation, err.validationContext);
    const detail = errors.map((e) => `${e.field} ${e.message}`).join('; ');
    return { code: 'validation_failed', status: 400, detail, errors };
  }
  switch (err?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'payload_too_large', status: 413, detail: 'The request body exceeds the size limit.' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'unsupported_media_type', status: 415, detail: 'Send the body as application/json.' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'validation_failed', status: 400, detail: 'The Content-Length header does not match the body.' };
    case 'FST_ERR_BAD_URL':
      return { code: 'validation_failed', status: 400, detail: 'The request path is not a valid URL.' };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { code: 'uri_too_long', status: 414, detail: 'A path segment is too long.' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'malformed_json', status: 400, detail: 'The body is empty but declared as JSON.' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { code: 'malformed_json', status: 400, detail: 'The body is not valid JSON.' };
    default:
      break;
  }
  if (error instanceof SyntaxError && err.statusCode === 400) {
    return { code: 'malformed_json', status: 400, detail: 'The body is not valid JSON.' };
  }
  if (isDependencyUnavailable(error)) {
    return {
      code: 'service_unavailable',
      status: 503,
      detail: 'A backing service is unavailable; try again shortly.',
      retryAfter: 1,
    };
  }
  const status = typeof err?.statusCode === 'number' ? err.statusCode : 500;
  if (status === 404) return { code: 'not_found', status, detail: 'No such resource.' };
  if (status === 413) return { code: 'payload_too_large', status, detail: 'The request body exceeds the size limit.' };
  if (status === 415) return { code: 'unsupported_media_type', status, detail: 'Send the body as application/json.' };
  if (status >= 400 && status < 500) {
    // Framework client errors (bad headers, prototype poisoning, …): the message is safe, it names no internals.
    return {
      code: 'validation_failed',
      status: 400,
      detail: typeof err.message === 'string' ? err.message : 'Bad request.',
    };
  }
  if (status === 503) return { code: 'service_unavailable', status, detail: ERROR_CATALOG.service_unavailable.title };
  return {
    code: 'internal_error',
    status: 500,
    detail: 'An unexpected error occurred. Quote the request id when reporting it.',
  };
}

export function sendProblem(reply: FastifyReply, error: unknown): FastifyReply {
  const problem = toProblem(error);
  // Also for errors raised before any hook ran (a malformed URL): every answer names its request.
  void reply.header('x-request-id', reply.request.id);
  const body = problemBody(problem.code, problem.detail, problem);
  if (body.retry_after !== undefined) void reply.header('retry-after', String(body.retry_after));
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** One error handler and one not-found handler for the whole app. */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const problem = toProblem(error);
    if (problem.status === 503) request.log.warn({ reason: (error as Error).message }, 'dependency unavailable');
    else if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: problem.code, status: problem.status }, 'request refused');
    return sendProblem(reply, error);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendProblem(
      reply,
      new AppError('not_found', `No route for ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}.`),
    ),
  );
}
