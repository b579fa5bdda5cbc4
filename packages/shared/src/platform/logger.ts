import type { LoggerOptions } from 'pino';

/**
 * Paths pino blanks out wherever they appear in a log object. Request bodies are never logged, so
 * these are the second line of defence for credentials and codes that end up in an object anyway.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-internal-token"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-internal-token"]',
  'body.code',
  'body.refresh',
  'body.token',
  'body.captcha_token',
  '*.otp',
  '*.refresh',
  '*.access',
  '*.token',
  '*.tokens',
  '*.secret',
  '*.internalToken',
  '*.privateKeyPem',
  '*.hmacSecret',
];

export function loggerOptions(service: string, level: string): LoggerOptions {
  return {
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
}
