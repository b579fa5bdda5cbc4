/**
 * A timestamptz as text in Date#toISOString's form (UTC, milliseconds, microseconds truncated as a
 * Date would), so that answers need not parse it into a Date and format it again.
 */
export const isoUtc = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * A user row's AccountStatus ('active', 'blocked' or 'deleted'), so that the reads a request makes
 * anyway tell whether its caller may still act, without a statement of their own.
 */
export const accountStatus = (alias: string) =>
  `CASE WHEN ${alias}.deleted_at IS NOT NULL THEN 'deleted' ` +
  `WHEN ${alias}.blocked_at IS NOT NULL THEN 'blocked' ELSE 'active' END`;
