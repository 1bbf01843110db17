/** Milliseconds in a day. */
export const DAY_MS = 86_400_000;

/**
 * The UTC day of a time in milliseconds since the epoch, as `YYYY-MM-DD`.
 *
 * @example
 * utcDay(Date.UTC(2026, 0, 31, 23, 59)); // "2026-01-31"
 */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * The start of the UTC day after the one `ms` falls in, in milliseconds since the epoch.
 *
 * @example
 * nextUtcDay(Date.UTC(2026, 0, 31, 12)); // Date.UTC(2026, 1, 1)
 */
export function nextUtcDay(ms: number): number {
  return (Math.floor(ms / DAY_MS) + 1) * DAY_MS;
}

/**
 * Whole seconds to wait for `ms` to pass, at least 1: a `Retry-After: 0` invites a busy loop.
 *
 * @example
 * retryAfterSeconds(1_200); // 2
 */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
