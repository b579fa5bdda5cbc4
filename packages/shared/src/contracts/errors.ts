/**
 * Every stable error `code` a client may see, with its HTTP status and title. Clients switch on
 * `code`; titles and details may change wording, codes may not.
 */
export const ERROR_CATALOG = {
  validation_failed: { status: 400, title: 'Request validation failed' },
  malformed_json: { status: 400, title: 'Malformed JSON body' },
  invalid_phone: { status: 400, title: 'Invalid phone number' },
  unauthorized: { status: 401, title: 'Authentication required' },
  otp_invalid: { status: 401, title: 'Wrong code' },
  otp_expired: { status: 401, title: 'Code expired or not requested' },
  token_invalid: { status: 401, title: 'Invalid token' },
  token_reused: { status: 401, title: 'Refresh token reused; session revoked' },
  forbidden: { status: 403, title: 'Forbidden' },
  captcha_required: { status: 403, title: 'Bot challenge required' },
  captcha_invalid: { status: 403, title: 'Bot challenge not passed' },
  webhook_signature_invalid: { status: 403, title: 'Delivery receipt not signed by the provider' },
  step_up_required: { status: 403, title: 'A recent sign-in is required' },
  account_blocked: { status: 403, title: 'Account blocked' },
  not_found: { status: 404, title: 'Not found' },
  invite_not_found: { status: 404, title: 'Invite code not found' },
  session_not_found: { status: 404, title: 'Session not found' },
  request_timeout: { status: 408, title: 'Request not received in time' },
  email_taken: { status: 409, title: 'Email already in use' },
  phone_taken: { status: 409, title: 'Phone number already in use' },
  invite_already_activated: { status: 409, title: 'An invite code is already activated' },
  payload_too_large: { status: 413, title: 'Request body too large' },
  uri_too_long: { status: 414, title: 'Request path too long' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  expectation_failed: { status: 417, title: 'Expectation not supported' },
  invite_self: { status: 422, title: 'Own invite code' },
  invite_cycle: { status: 422, title: 'Invite would create a cycle' },
  destination_refused: { status: 422, title: 'Codes are not sent to this number' },
  headers_too_large: { status: 431, title: 'Request headers too large' },
  resend_too_soon: { status: 429, title: 'Code requested too recently' },
  rate_limited: { status: 429, title: 'Too many requests' },
  otp_attempts_exceeded: { status: 429, title: 'Too many wrong codes' },
  prefix_blocked: { status: 429, title: 'Codes to this number range are paused' },
  internal_error: { status: 500, title: 'Internal server error' },
  bad_gateway: { status: 502, title: 'Upstream service failed' },
  service_unavailable: { status: 503, title: 'Service temporarily unavailable' },
  budget_exhausted: { status: 503, title: 'Daily SMS budget spent' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface FieldError {
  field: string;
  message: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  errors?: FieldError[];
  retry_after?: number;
  [extension: string]: unknown;
}

export function problemType(code: ErrorCode): string {
  return `urn:refstack:problem:${code}`;
}

export interface AppErrorExtras {
  errors?: FieldError[];
  /** Seconds; also sent as the `Retry-After` header. */
  retryAfter?: number;
  /** Further problem members, e.g. `attempts_left`. */
  extensions?: Record<string, unknown>;
}

/** A failure the client can act on; mapped once to problem+json by the error handler. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly extras: AppErrorExtras;

  constructor(code: ErrorCode, detail?: string, extras: AppErrorExtras = {}, cause?: unknown) {
    super(detail ?? ERROR_CATALOG[code].title, cause === undefined ? undefined : { cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
    this.extras = extras;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

const TOO_MANY_REQUESTS_FALLBACK_SECONDS = 60;

export function problemBody(code: ErrorCode, detail: string, extras: AppErrorExtras = {}): ProblemBody {
  const { status, title } = ERROR_CATALOG[code];
  const body: ProblemBody = { type: problemType(code), title, status, code, detail };
  if (extras.errors) body.errors = extras.errors;
  if (extras.retryAfter !== undefined) body.retry_after = Math.max(1, Math.ceil(extras.retryAfter));
  // Every 429 says when to come back (the contract); one raised without a hint gets a cautious one.
  else if (status === 429) body.retry_after = TOO_MANY_REQUESTS_FALLBACK_SECONDS;
  if (extras.extensions) Object.assign(body, extras.extensions);
  return body;
}
