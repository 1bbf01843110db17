export { limiterFor } from "./client";
export { formatReset, rateLimitHeaders } from "./headers";
export { type KeyLimits, parseKeyLimits } from "./key-limits";
export { type Admission, type Limits, MAX_STREAM_MS, RateLimiter, utcDay, WINDOW_MS } from "./rate-limiter";
