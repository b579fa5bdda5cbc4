import { pino, type DestinationStream, type LevelWithSilent, type LoggerOptions } from 'pino';

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

// pino's levels, quietest last.
const LEVELS: readonly LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/**
 * The level of routes that probes, scrapers and browsers call all day (health, metrics, API
 * documents): warn and up, so their requests leave no access line; never below the app's own
 * level, though, or LOG_LEVEL=error (or silent) would still hear from them.
 */
export function quietRouteLogLevel(appLevel: string): LevelWithSilent {
  const app = LEVELS.find((level) => level === appLevel);
  return app && LEVELS.indexOf(app) > LEVELS.indexOf('warn') ? app : 'warn';
}

/**
 * Standard output, written in batches: lines gather until 3 KiB are waiting or 100 ms have passed,
 * and go out in one write instead of one per line (a write per request showed as several per cent
 * of every service's CPU under load). A write holds whole lines and at most 4 KiB, the size a pipe
 * takes at once, so the SMS worker's printed messages never land inside a log line. pino writes
 * what is pending when the process exits; a process killed outright loses at most its last 100 ms.
 */
export function logDestination(): DestinationStream {
  return pino.destination({ dest: 1, sync: false, minLength: 3072, maxWrite: 4096, periodicFlush: 100 });
}
