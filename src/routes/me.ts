import type { Context } from "hono";
import type { Client } from "../client";
import type { AppEnv, Env } from "../env";
import { nextUtcDay, utcDay } from "../lib/time";
import { ceilingFor } from "../limits/ceiling";
import { limiterFor, limiterLimits, limitsFor } from "../limits/client";
import { formatReset } from "../limits/headers";

/** What `GET /me` answers: who the caller is, its limits, and what is left of each. */
export type Me = {
  /** `session` (a token minted by `POST /session`), `token`, `key`, or `ip` (open mode). */
  kind: "session" | "token" | "key" | "ip";
  /** The key's name, the token's subject, or the IP. */
  name: string;
  /** When the caller's token expires, in seconds since the epoch; null for keys and open mode. */
  expires_at: number | null;
  /** Null where no limit applies. */
  limits: {
    requests_per_minute: number | null;
    concurrent_streams: number | null;
    tokens_per_day: number | null;
    usd_per_day: number | null;
  };
  remaining: { requests_this_minute: number | null; tokens_today: number | null; usd_today: number | null };
  /** When each renews, in OpenAI's duration format (`45s`, `3h12m0s`). */
  reset: { requests: string; budgets: string };
  /** The proxy's own daily spending limit, for all its users: only whether it is reached, never how much others spent. */
  spend_limit: { reached: boolean } | null;
};

/**
 * `GET /me`: what a caller may still do, so that a chat page can say "N messages left today" before
 * it sends anything. Takes the same credential as `/v1/*`, counts nothing, calls no upstream.
 *
 * @example
 * app.get("/me", configured(), clientAuth(), me);
 */
export async function me(c: Context<AppEnv>): Promise<Response> {
  const config = c.get("config");
  const client = c.get("client");
  const limits = limitsFor(config.limits, client);
  const rpm = limits.rpm === 0 ? null : limits.rpm;
  const counted = rpm !== null || limits.tokensPerDay !== null || limits.usdPerDay !== null;
  const state = counted ? await limiterFor(c.env.RATE_LIMITER, client.id).peek(limiterLimits(limits)) : null;
  const ceilingUsd = config.ceiling.dailyLimitUsd;
  const reached = ceilingUsd === null ? null : await ceilingReached(c.env.SPEND_CEILING, ceilingUsd);
  const now = Date.now();
  const body: Me = {
    kind: kindOf(client),
    name: client.name,
    expires_at: client.exp ?? null,
    limits: {
      requests_per_minute: rpm,
      concurrent_streams: limits.maxStreams === 0 ? null : limits.maxStreams,
      tokens_per_day: limits.tokensPerDay,
      usd_per_day: limits.usdPerDay,
    },
    remaining: {
      requests_this_minute: rpm === null ? null : (state?.requests.remaining ?? rpm),
      tokens_today: state?.budget.tokens?.remaining ?? null,
      usd_today: state?.budget.usd?.remaining ?? null,
    },
    reset: {
      requests: formatReset(state?.requests.resetMs ?? 0),
      budgets: formatReset(state?.budget.resetMs ?? nextUtcDay(now) - now),
    },
    spend_limit: reached === null ? null : { reached },
  };
  return c.json(body, 200, { "cache-control": "no-store" });
}

function kindOf(client: Client): Me["kind"] {
  return client.kind === "token" && client.name.startsWith("session:") ? "session" : client.kind;
}

/** How long an isolate reuses what the ceiling said, so that `GET /me` never makes the one ceiling object hot. */
const CEILING_STATE_TTL_MS = 5_000;
let ceilingSeen: { at: number; day: string; limitUsd: number; reached: boolean } | null = null;

/**
 * Whether the spend ceiling has nothing left to lend (spent, or held by isolates for requests in
 * flight), asked of its Durable Object at most once per `CEILING_STATE_TTL_MS` per isolate.
 */
async function ceilingReached(namespace: Env["SPEND_CEILING"], limitUsd: number): Promise<boolean> {
  const now = Date.now();
  const day = utcDay(now);
  const seen = ceilingSeen;
  if (seen !== null && seen.day === day && seen.limitUsd === limitUsd && now - seen.at < CEILING_STATE_TTL_MS) {
    return seen.reached;
  }
  const state = await ceilingFor(namespace).stateOf(day);
  const reached = state.spentUsd + state.lentUsd >= limitUsd - 1e-9;
  ceilingSeen = { at: now, day, limitUsd, reached };
  return reached;
}
