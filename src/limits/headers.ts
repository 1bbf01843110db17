import type { Admission } from "./rate-limiter";

/**
 * A duration the way OpenAI writes it in `x-ratelimit-reset-requests` (Go's duration format, to
 * the millisecond, rounded up): `"120ms"`, `"1s"`, `"1.5s"`, `"6m0s"`, `"1h0m0s"`; `"0s"` for none.
 *
 * @example
 * formatReset(360_000); // "6m0s"
 */
export function formatReset(ms: number): string {
  if (!(ms > 0)) return "0s";
  const total = Math.ceil(ms);
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const millis = total % 60_000;
  const fraction =
    millis % 1000 === 0
      ? ""
      : `.${String(millis % 1000)
          .padStart(3, "0")
          .replace(/0+$/, "")}`;
  const secs = `${Math.floor(millis / 1000)}${fraction}s`;
  if (hours > 0) return `${hours}h${minutes}m${secs}`;
  if (minutes > 0) return `${minutes}m${secs}`;
  return secs;
}

/**
 * The headers that tell a client where it stands: `x-ratelimit-limit-requests`,
 * `x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests` (OpenAI's names) and, when
 * refused, `retry-after` in seconds.
 *
 * @example
 * rateLimitHeaders({ ok: true, limit: 60, remaining: 59, resetMs: 60_000, slot: null });
 * // { "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1m0s" }
 */
export function rateLimitHeaders(admission: Admission): Record<string, string> {
  const headers: Record<string, string> = {
    "x-ratelimit-limit-requests": String(admission.limit),
    "x-ratelimit-remaining-requests": String(admission.remaining),
    "x-ratelimit-reset-requests": formatReset(admission.resetMs),
  };
  if (!admission.ok) headers["retry-after"] = String(admission.retryAfterSeconds);
  return headers;
}
