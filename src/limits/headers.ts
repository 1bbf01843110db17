import type { Admission, BudgetState } from "./rate-limiter";

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
export function rateLimitHeaders(
  admission: Pick<Admission, "limit" | "remaining" | "resetMs"> &
    ({ ok: true } | { ok: false; retryAfterSeconds: number }),
): Record<string, string> {
  const headers: Record<string, string> = {
    "x-ratelimit-limit-requests": String(admission.limit),
    "x-ratelimit-remaining-requests": String(admission.remaining),
    "x-ratelimit-reset-requests": formatReset(admission.resetMs),
  };
  if (!admission.ok) headers["retry-after"] = String(admission.retryAfterSeconds);
  return headers;
}

/**
 * The headers that tell a page what is left of its client's daily budgets, so that it can say so
 * before it sends anything: `x-budget-limit-usd`, `x-budget-remaining-usd`, and the token
 * equivalents `x-budget-limit-tokens`, `x-budget-remaining-tokens`, where each applies, and
 * `x-budget-reset`, the time until 00:00 UTC in OpenAI's duration format. None when no budget applies.
 *
 * @example
 * budgetHeaders({ usd: { limit: 0.1, remaining: 0.0931 }, tokens: null, resetMs: 3_600_000 });
 * // { "x-budget-limit-usd": "0.1", "x-budget-remaining-usd": "0.0931", "x-budget-reset": "1h0m0s" }
 */
export function budgetHeaders(state: BudgetState): Record<string, string> {
  const headers: Record<string, string> = {};
  if (state.usd !== null) {
    headers["x-budget-limit-usd"] = dollars(state.usd.limit);
    headers["x-budget-remaining-usd"] = dollars(state.usd.remaining);
  }
  if (state.tokens !== null) {
    headers["x-budget-limit-tokens"] = String(state.tokens.limit);
    headers["x-budget-remaining-tokens"] = String(state.tokens.remaining);
  }
  if (state.usd !== null || state.tokens !== null) headers["x-budget-reset"] = formatReset(state.resetMs);
  return headers;
}

/** Dollars to the millionth, without trailing zeros: `0.0931`, `10`. */
function dollars(usd: number): string {
  return String(Math.max(0, Math.floor(usd * 1e6) / 1e6));
}
