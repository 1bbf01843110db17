import type { Context, MiddlewareHandler } from "hono";
import type { Client } from "../../client";
import type { Config } from "../../config";
import type { AppEnv } from "../../env";
import { ProxyError } from "../../errors";
import { nextUtcDay, retryAfterSeconds } from "../../lib/time";
import type { Amount } from "../../limits/budget";
import { ceilingFor, type SpendCeiling } from "../../limits/ceiling";
import { type CeilingHold, ceilingSlice } from "../../limits/ceiling-lease";
// The modules, not the Durable Objects': their classes need cloudflare:workers.
import { limiterFor, limiterLimits, limitsFor } from "../../limits/client";
import { type SliceHold, sliceFor } from "../../limits/client-lease";
import { budgetHeaders, rateLimitHeaders } from "../../limits/headers";
import type { Admission as LimiterAdmission, RateLimiter } from "../../limits/rate-limiter";
import { reservationCostUsd } from "../../usage/spend";

declare module "hono" {
  interface ContextVariableMap {
    /** What admission took for this request, to be given back once its outcome is known. */
    admission: Admission;
  }
}

/** An admitted request's hold on its client's limits and on the spend ceiling. */
export type Admission = {
  /**
   * Frees the request's stream slot and settles its reservations at `spent`, what it really cost:
   * one call to the client's Durable Object (retried once: it can fail while the object restarts),
   * and the ceiling's slice, in memory. Settles once the slice no longer needs the request.
   */
  finish(spent: Amount): Promise<void>;
  /**
   * Reserves `more` for a request that spends as it goes (a Realtime session); false when it does
   * not fit in what is left of a budget or the ceiling. True when none applies.
   */
  extend(more: Amount): Promise<boolean>;
  /** Keeps the request's hold on the ceiling alive until `done`: for requests that outlast a slice. */
  keepAlive(done: Promise<unknown>): Promise<void>;
};

/**
 * Admits every authenticated request against what may be spent: first its client's limits, exact
 * across the whole edge: the per-minute limit, a concurrent-stream slot for a stream, and what the
 * request may spend at most (`outgoing.reservation`, in tokens and in dollars) from its daily
 * budgets, refusing one that does not fit in what is left. A request that takes a stream slot (or
 * opens a Realtime session) asks the client's Durable Object; any other is admitted from this
 * isolate's slice of the client's limits (`ClientSlice`), usually without a round trip. Then the proxy's daily spend ceiling (`DAILY_SPEND_LIMIT_USD`, reserved
 * from this isolate's slice, usually without a round trip), so that a client over its own limits
 * never takes any of the ceiling from others. Over a limit: 429 `rate_limit_exceeded` with `Retry-After` and
 * OpenAI's `x-ratelimit-*-requests` headers; over a budget or the ceiling: 429 `insufficient_quota`,
 * saying which, with `Retry-After` until 00:00 UTC. Admitted, it sets `admission`, which the
 * accounting step finishes with what the request really spent, and puts on the answer the proxy's
 * `x-ratelimit-*-requests` (on successes and its own errors: upstream's own errors keep upstream's
 * alone) and what is left of the client's budgets (`x-budget-*`).
 *
 * @example
 * app.post("/", configured(), clientAuth(), bodyLimit(), policy("seed"), rateLimit(), seedChat);
 */
export function rateLimit(): MiddlewareHandler<AppEnv> {
  return async function rateLimitMiddleware(c, next) {
    const config = c.get("config");
    const client = c.get("client");
    const outgoing = c.get("outgoing");
    const clientLimits = limitsFor(config.limits, client);
    const { rpm, maxStreams, tokensPerDay, usdPerDay } = clientLimits;
    const context = { model: outgoing.model, billing: outgoing.billing, reservation: outgoing.reservation };
    const { inputTokens, outputTokens } = outgoing.reservation;
    const reserve: Amount = {
      tokens: outgoing.billing === "tokens" ? inputTokens + outputTokens : 0,
      usd: reservationCostUsd(context, config.usage),
    };

    const budgeted = tokensPerDay !== null || usdPerDay !== null;
    // The client's own limits first: a client over them must not take any of the ceiling from others.
    // 0 means no limit: with nothing to count, the client's Durable Object is not asked at all.
    const counted = rpm !== 0 || (maxStreams !== 0 && outgoing.stream) || budgeted;
    const limits = limiterLimits(clientLimits);
    // The client's Durable Object stub, made only when it is called: a request its isolate's slice admits never is.
    let stub: DurableObjectStub<RateLimiter> | undefined;
    const limiter = () => {
      stub ??= limiterFor(c.env.RATE_LIMITER, client.id);
      return stub;
    };
    const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise);
    let slot: string | null = null;
    let reservation: string | null = null;
    let hold: SliceHold | null = null;
    let headers: Record<string, string> = {};
    if (counted) {
      // A stream slot, or a reservation a Realtime session grows as it goes, is the object's to
      // hold per request; every other request is admitted from this isolate's slice when it can be.
      const perRequest = outgoing.stream && (maxStreams !== 0 || isWebSocket(c));
      const slice = perRequest ? null : sliceFor(client.id, limits);
      const sliced =
        slice === null ? null : await slice.admit(limiter, limits, reserve, config.ceiling.leaseMs, waitUntil);
      const admission = sliced ?? (await limiter().acquire(limits, outgoing.stream, reserve));
      headers = { ...rateLimitHeaders(admission), ...budgetHeaders(admission.budget) };
      if (!admission.ok) throw refusal(client, admission, reserve, headers, maxStreams);
      if ("hold" in admission) hold = admission.hold;
      else ({ slot, reservation } = admission);
    }
    const release = (spent: Amount) =>
      hold !== null
        ? hold.settle(spent)
        : slot === null && reservation === null
          ? undefined
          : retryOnce("finish an admitted request", () => limiter().finish(slot, reservation, spent));

    let ceiling: CeilingHold | null;
    try {
      ceiling = await holdCeiling(c, config, reserve.usd, headers);
    } catch (error) {
      c.executionCtx.waitUntil(release({ tokens: 0, usd: 0 }) ?? Promise.resolve());
      throw error;
    }
    if (!counted && ceiling === null) return next();

    const holds: CeilingHold[] = ceiling === null ? [] : [ceiling];
    c.set("admission", {
      finish: async (spent) => {
        await Promise.all([release(spent), settleHolds(holds, spent.usd)]);
      },
      extend: async (more) => {
        if (config.ceiling.dailyLimitUsd !== null) {
          const extra = await holdCeiling(c, config, more.usd, {}).catch(() => null);
          if (extra === null) return false;
          holds.push(extra);
        }
        // Only per-request admissions spend as they go (see above).
        return reservation === null || !budgeted ? true : limiter().extend(reservation, more, limits);
      },
      keepAlive: async (done) => {
        await Promise.all(holds.map((hold) => hold.keepAlive(done)));
      },
    });
    await next();
    // One coherent set of rate-limit headers: upstream's own error keeps upstream's; the proxy's
    // own answers, and successes (where the client cares about its own limit), carry the proxy's.
    const own = c.res.status < 400 || c.error !== undefined;
    for (const [name, value] of Object.entries(headers)) {
      if (own || name.startsWith("x-budget-")) c.res.headers.set(name, value);
    }
  };
}

/**
 * Reserves `usd` from the spend ceiling, when one applies; null when none does. A request the
 * ceiling cannot cover is refused here, for every client alike, saying only that the proxy's limit
 * was reached (never how much others spent); `headers` go on that refusal (the client's budget).
 */
async function holdCeiling(
  c: Context<AppEnv>,
  config: Config,
  usd: number,
  headers: Record<string, string>,
): Promise<CeilingHold | null> {
  const limitUsd = config.ceiling.dailyLimitUsd;
  if (limitUsd === null || usd <= 0) return null;
  const now = Date.now();
  const refused = (message: string) =>
    new ProxyError(429, message, {
      type: "insufficient_quota",
      code: "insufficient_quota",
      headers: { ...headers, "retry-after": String(retryAfterSeconds(nextUtcDay(now) - now)) },
    });
  if (usd > limitUsd) {
    // Never asked of the ceiling: a request that could not fit even in a whole day's ceiling.
    throw refused(
      `This request may cost up to $${money(usd)}, more than this proxy's daily spending limit for all its users; ask for fewer output tokens.`,
    );
  }
  let stub: DurableObjectStub<SpendCeiling> | undefined;
  const ceiling = () => {
    stub ??= ceilingFor(c.env.SPEND_CEILING);
    return stub;
  };
  const hold = await ceilingSlice.reserve(ceiling, usd, { limitUsd, leaseMs: config.ceiling.leaseMs }, (promise) =>
    c.executionCtx.waitUntil(promise),
  );
  if (hold !== null) return hold;
  throw refused("This proxy has reached its daily spending limit for all its users; it renews at 00:00 UTC.");
}

/** Settles a request's ceiling holds at what it really spent, charged to the first (the rest settle at 0). */
async function settleHolds(holds: readonly CeilingHold[], usd: number): Promise<void> {
  await Promise.all(holds.map((hold, i) => hold.settle(i === 0 ? usd : 0)));
}

/** The 429 for a refused admission, saying which limit was reached. */
function refusal(
  client: Client,
  admission: Extract<LimiterAdmission, { ok: false }>,
  reserve: Amount,
  headers: Record<string, string>,
  maxStreams: number,
): ProxyError {
  const { budget } = admission;
  if (admission.reason === "tokens" && budget.tokens !== null) {
    return new ProxyError(
      429,
      `${client.name} has ${budget.tokens.remaining} of its ${budget.tokens.limit} daily tokens left, and this request ` +
        `reserves ${reserve.tokens} (its input and the output it may generate); the budget renews at 00:00 UTC.`,
      { type: "insufficient_quota", code: "insufficient_quota", headers },
    );
  }
  if (admission.reason === "usd" && budget.usd !== null) {
    return new ProxyError(
      429,
      `${client.name} has $${money(budget.usd.remaining)} of its $${money(budget.usd.limit)} daily budget left, and this ` +
        `request may cost up to $${money(reserve.usd)}; the budget renews at 00:00 UTC.`,
      { type: "insufficient_quota", code: "insufficient_quota", headers },
    );
  }
  const what =
    admission.reason === "streams"
      ? `more than ${maxStreams} concurrent streams`
      : `more than ${admission.limit} requests per minute`;
  return new ProxyError(
    429,
    `Rate limit reached for ${client.name}: ${what}. Try again in ${admission.retryAfterSeconds} s.`,
    { type: "rate_limit_error", code: "rate_limit_exceeded", headers },
  );
}

/** Whether the request opens a WebSocket (a Realtime session). */
function isWebSocket(c: Context<AppEnv>): boolean {
  return c.req.header("upgrade")?.toLowerCase() === "websocket";
}

/** Dollars for a message: cents, or more digits for amounts under a cent. */
function money(usd: number): string {
  return usd >= 0.01 ? usd.toFixed(2) : usd.toPrecision(2);
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
