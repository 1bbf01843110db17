import type { MiddlewareHandler } from "hono";
import type { ReadyConfig } from "../../config";
import { ProxyError } from "../../errors";
// The modules, not the index: the index also exports the Durable Object class, which needs cloudflare:workers.
import { limiterFor } from "../../limits/client";
import { rateLimitHeaders } from "../../limits/headers";
import type { AppEnv, RequestBody } from "../../types";
import { requestJson } from "../body-limit";
import { capOutput } from "../policy";

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
    const rpm = client.rpm ?? perKey?.rpm ?? config.rateLimitRpm;
    const maxStreams = perKey?.maxStreams ?? config.maxConcurrentStreams;
    const tokensPerDay = client.tpd ?? perKey?.tokensPerDay ?? config.dailyTokenBudget;
    const json = requestJson(c);
    const stream = json?.stream === true;
    // 0 means no limit: with nothing to count, the Durable Object is not asked at all.
    if (rpm === 0 && (maxStreams === 0 || !stream) && tokensPerDay === null) return next();
    const limits = {
      rpm: rpm === 0 ? Number.MAX_SAFE_INTEGER : rpm,
      maxStreams: maxStreams === 0 ? Number.MAX_SAFE_INTEGER : maxStreams,
      tokensPerDay,
    };
    const limiter = limiterFor(c.env.RATE_LIMITER, client.id);
    let reserve = 0;
    if (tokensPerDay !== null) {
      // Nothing may spend more than it reserved: a request without an output cap gets the reserved one.
      const endpoint = c.req.path === "/" ? "/chat/completions" : c.req.path.slice("/v1".length);
      if (json !== undefined && capOutput(json, endpoint, config.maxOutputTokens ?? DEFAULT_OUTPUT_RESERVATION)) {
        c.set("body", encoder.encode(JSON.stringify(json)));
      }
      reserve = reservation(c.get("body"), json, config);
    }
    const admission = await limiter.acquire(limits, stream, reserve);
    const headers = rateLimitHeaders(admission);
    if (!admission.ok && admission.reason === "budget") {
      throw new ProxyError(
        429,
        `${client.name} has spent its daily budget of ${tokensPerDay} tokens; it renews at 00:00 UTC.`,
        { type: "insufficient_quota", code: "insufficient_quota", headers },
      );
    }
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
    const { slot, reservation: reserved } = admission;
    const info = c.get("info");
    if (slot !== null) {
      c.executionCtx.waitUntil(
        (info.done ?? Promise.resolve()).then(() => retryOnce("release a stream slot", () => limiter.release(slot))),
      );
    }
    if (reserved !== null) {
      const settled = (info.accounting ?? Promise.resolve(null)).then((accounting) =>
        retryOnce("settle a token reservation", () =>
          limiter.settle(reserved, accounting === null ? null : accounting.tokens),
        ),
      );
      c.executionCtx.waitUntil(settled);
    }
  };
}

/** Reserved before forwarding: the request's output cap (or the proxy's, or 4096) for each of its `n` choices, plus about a token per 4 bytes of input. */
function reservation(body: RequestBody, json: Record<string, unknown> | undefined, config: ReadyConfig): number {
  const input = body instanceof Uint8Array ? Math.ceil(body.byteLength / 4) : 0;
  const asked = [json?.max_tokens, json?.max_completion_tokens, json?.max_output_tokens].find(
    (v) => typeof v === "number",
  );
  const output = typeof asked === "number" ? asked : (config.maxOutputTokens ?? DEFAULT_OUTPUT_RESERVATION);
  const choices = typeof json?.n === "number" && json.n > 1 ? json.n : 1;
  return input + output * choices;
}

/** A Durable Object call after the response, tried twice (it can fail while the object restarts, e.g. during a deploy), then logged. */
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

const DEFAULT_OUTPUT_RESERVATION = 4096;
const encoder = new TextEncoder();
