/**
 * Every response header a client may act on, in one place: what the proxy passes on from upstream
 * and what it sets itself. CORS exposes all of them (`EXPOSED_HEADERS`), so a page in another
 * origin reads what a server does; a test checks the list against what the answers carry and
 * against what the official SDKs read.
 */

/** OpenAI's rate-limit headers (the proxy sets the `-requests` ones itself when it limits a client). */
export const RATE_LIMIT_HEADERS = [
  "x-ratelimit-limit-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens",
] as const;

/**
 * Upstream response headers passed on to clients (and every `x-ratelimit-*`); everything else
 * (cookies, organization names, CDN headers) stays behind.
 */
export const PASSED_HEADERS: ReadonlySet<string> = new Set([
  "content-type",
  "content-disposition",
  "content-range",
  "etag",
  "last-modified",
  "x-request-id",
  "openai-processing-ms",
  "openai-version",
  "openai-poll-after-ms",
  "retry-after",
  "retry-after-ms",
  "x-should-retry",
]);

/** What is left of a client's daily budgets, on every answer to a client that has one (see `budgetHeaders`). */
export const BUDGET_HEADERS = [
  "x-budget-limit-usd",
  "x-budget-remaining-usd",
  "x-budget-limit-tokens",
  "x-budget-remaining-tokens",
  "x-budget-reset",
] as const;

/** Headers the proxy sets on its own answers for clients to act on. */
export const PROXY_HEADERS = [
  "x-request-id",
  "x-should-retry",
  "retry-after",
  "www-authenticate",
  "allow",
  ...BUDGET_HEADERS,
] as const;

/** Response headers browsers let scripts read without being told (the Fetch standard's CORS-safelisted ones). */
export const SAFELISTED_HEADERS: ReadonlySet<string> = new Set([
  "cache-control",
  "content-language",
  "content-length",
  "content-type",
  "expires",
  "last-modified",
  "pragma",
]);

/** `Access-Control-Expose-Headers`: every header above that browsers would otherwise hide. */
export const EXPOSED_HEADERS = [...new Set([...PASSED_HEADERS, ...RATE_LIMIT_HEADERS, ...PROXY_HEADERS])]
  .filter((name) => !SAFELISTED_HEADERS.has(name))
  .join(", ");

/**
 * Whether an upstream response header goes on to the client.
 *
 * @example
 * isPassed("x-ratelimit-remaining-tokens"); // true
 * isPassed("set-cookie"); // false
 */
export function isPassed(name: string): boolean {
  return PASSED_HEADERS.has(name) || name.startsWith("x-ratelimit-");
}
