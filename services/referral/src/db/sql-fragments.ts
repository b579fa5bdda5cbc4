/**
 * A timestamptz as text in Date#toISOString's form (UTC, milliseconds, microseconds truncated as a
 * Date would), so that answers need not parse it into a Date and format it again.
 */
export const isoUtc = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
