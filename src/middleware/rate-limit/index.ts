import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../env";
import { ProxyError } from "../../errors";
// The modules, not the Durable Object's: its class needs cloudflare:workers.
import { limiterFor, limitsFor } from "../../limits/client";
import { rateLimitHeaders } from "../../limits/headers";

declare module "hono" {
  interface ContextVariableMap {
    /** What admission took for this request, to be given back once its outcome is known. */
    admission: Admission;
  }
}

/** An admitted request's hold on its client's limits. */
export type Admission = {
  /**
   * Frees the request's stream slot and settles its token reservation at `tokens`, what it really
   * spent: one Durable Object call, retried once (it can fail while the object restarts, e.g.
   * during a deploy), then logged.
   */
  finish(tokens: number): Promise<void>;
  /**
   * Reserves `tokens` more of the daily budget for a request that spends as it goes (a Realtime
   * session); false when they do not fit in what is left. True when no budget applies.
   */
  extend(tokens: number): Promise<boolean>;
};

/**
 * Admits every authenticated request against its client's limits, in the client's Durable Object:
 * one round trip, exact across the whole edge. Counts it against the per-minute limit, takes a
 * concurrent-stream slot for a stream, and reserves what the request may spend from a daily token
 * budget (`outgoing.reservation`), refusing one whose reservation does not fit in what is left.
 * Over a limit: 429 `rate_limit_exceeded` with `Retry-After` and OpenAI's `x-ratelimit-*-requests`
 * headers; over the budget: 429 `insufficient_quota`, saying how much is left. Admitted, it sets
 * `admission`, which the accounting step finishes with what the request really spent, and puts the
 * proxy's `x-ratelimit-*-requests` on successes and on its own errors (upstream's own errors keep
 * upstream's headers alone).
 *
 * @example
 * app.post("/", configured(), clientAuth(), bodyLimit(), policy("seed"), rateLimit(), seedChat);
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async function rateLimitMiddleware(c, next) {
    const client = c.get("client");
    const outgoing = c.get("outgoing");
    const { rpm, maxStreams, tokensPerDay } = limitsFor(c.get("config").limits, client);
    const stream = outgoing.stream;
    // 0 means no limit: with nothing to count, the Durable Object is not asked at all.
    if (rpm === 0 && (maxStreams === 0 || !stream) && tokensPerDay === null) return next();
    const limits = {
      rpm: rpm === 0 ? Number.MAX_SAFE_INTEGER : rpm,
      maxStreams: maxStreams === 0 ? Number.MAX_SAFE_INTEGER : maxStreams,
      tokensPerDay,
    };
    const { inputTokens, outputTokens } = outgoing.reservation;
    const reserve = tokensPerDay === null ? 0 : inputTokens + outputTokens;
    const limiter = limiterFor(c.env.RATE_LIMITER, client.id);
    const admission = await limiter.acquire(limits, stream, reserve);
    const headers = rateLimitHeaders(admission);
    if (!admission.ok && admission.reason === "budget") {
      const left = admission.tokensLeft ?? 0;
      throw new ProxyError(
        429,
        `${client.name} has ${left} of its ${tokensPerDay} daily tokens left, and this request reserves ${reserve} ` +
          `(its input and the output it may generate); the budget renews at 00:00 UTC.`,
        { type: "insufficient_quota", code: "insufficient_quota", headers },
      );
    }
    if (!admission.ok) {
      const what =
        admission.reason === "streams"
          ? `more than ${maxStreams} concurrent streams`
          : `more than ${admission.limit} requests per minute`;
      throw new ProxyError(
        429,
        `Rate limit reached for ${client.name}: ${what}. Try again in ${admission.retryAfterSeconds} s.`,
        { type: "rate_limit_error", code: "rate_limit_exceeded", headers },
      );
    }

    const { slot, reservation } = admission;
    if (slot !== null || reservation !== null) {
      c.set("admission", {
        finish: (tokens) => retryOnce("finish an admitted request", () => limiter.finish(slot, reservation, tokens)),
        extend: async (tokens) =>
          reservation === null || tokensPerDay === null ? true : limiter.extend(reservation, tokens, tokensPerDay),
      });
    }
    await next();
    // One coherent set of rate-limit headers: upstream's own error keeps upstream's; the proxy's
    // own answers, and successes (where the client cares about its own limit), carry the proxy's.
    if (c.res.status >= 400 && c.error === undefined) return;
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
  };
}

/** A Durable Object call, tried twice, then logged. */
function retryOnce(what: string, call: () => Promise<void> | void): Promise<void> {
  const attempt = async () => {
    await call();
  };
  return attempt()
    .catch(attempt)
    .catch((error: unknown) => {
      console.error(JSON.stringify({ level: "error", msg: `could not ${what}`, error: String(error) }));
    });
}
