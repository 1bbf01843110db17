import type { MiddlewareHandler } from "hono";
import { ProxyError } from "../../errors";
import { limiterFor, rateLimitHeaders } from "../../limits";
import type { AppEnv } from "../../types";
import { requestJson } from "../body-limit";

/**
 * Counts every authenticated request against its client's per-minute limit, and every stream
 * against its concurrent-stream limit, in the client's Durable Object: one round trip per
 * request, exact across the whole edge. Over a limit: 429 `rate_limit_exceeded` with
 * `Retry-After` and OpenAI's `x-ratelimit-*-requests` headers; under it the same headers tell
 * what is left, replacing upstream's (the client cares about its own limit). A stream's slot is
 * given back when the stream ends, however it ends.
 *
 * @example
 * app.post("/", configured(), bodyLimit(), clientAuth(), rateLimit(), seedChat);
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async function rateLimitMiddleware(c, next) {
    const config = c.get("config");
    const client = c.get("client");
    const perKey = client.kind === "key" ? config.keyLimits.get(client.name) : undefined;
    const limits = {
      rpm: client.rpm ?? perKey?.rpm ?? config.rateLimitRpm,
      maxStreams: perKey?.maxStreams ?? config.maxConcurrentStreams,
    };
    const stream = requestJson(c)?.stream === true;
    const limiter = limiterFor(c.env.RATE_LIMITER, client.id);
    const admission = await limiter.acquire(limits, stream);
    const headers = rateLimitHeaders(admission);
    if (!admission.ok) {
      const what =
        admission.reason === "streams"
          ? `more than ${admission.limit} concurrent streams`
          : `more than ${admission.limit} requests per minute`;
      throw new ProxyError(
        429,
        `Rate limit reached for ${client.name}: ${what}. Try again in ${admission.retryAfterSeconds} s.`,
        {
          type: "rate_limit_error",
          code: "rate_limit_exceeded",
          headers,
        },
      );
    }

    await next();

    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
    const { slot } = admission;
    if (slot === null) return;
    const done = c.get("info").done ?? Promise.resolve();
    c.executionCtx.waitUntil(done.then(() => limiter.release(slot)));
  };
}
