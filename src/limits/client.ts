import type { Client } from "../client";
import type { CeilingSettings, LimitSettings } from "../config";
import type { Limits, RateLimiter } from "./rate-limiter";

/**
 * The limiter for one client identity: `"key:web"` (a client key's name), `"sub:alice"` (a token's
 * subject), `"ip:203.0.113.9"` (open mode). The same identity reaches the same object from anywhere.
 *
 * @example
 * const admission = await limiterFor(env.RATE_LIMITER, "key:web").acquire({ rpm: 60, maxStreams: 5 }, false, 0);
 */
export function limiterFor(
  namespace: DurableObjectNamespace<RateLimiter>,
  clientId: string,
): DurableObjectStub<RateLimiter> {
  return namespace.getByName(clientId);
}

/**
 * A client's own limits: a token's claims first, then its key's `PROXY_KEY_LIMITS`, then the
 * defaults. `rpm` and `maxStreams` of 0 mean no limit; `tokensPerDay` and `usdPerDay` null mean no
 * budget.
 *
 * @example
 * limitsFor(config.limits, { id: "key:web", kind: "key", name: "web" }); // { rpm: 60, maxStreams: 5, tokensPerDay: null, usdPerDay: null }
 */
export function limitsFor(settings: LimitSettings, client: Client): Required<Limits> {
  const perKey = client.kind === "key" ? settings.keyLimits.get(client.name) : undefined;
  return {
    rpm: client.rpm ?? perKey?.rpm ?? settings.rpm,
    maxStreams: perKey?.maxStreams ?? settings.maxStreams,
    tokensPerDay: client.tpd ?? perKey?.tokensPerDay ?? settings.dailyTokenBudget,
    usdPerDay: client.usd ?? perKey?.usdPerDay ?? settings.dailyBudgetUsd,
  };
}

/**
 * A client's limits as its Durable Object counts them: the settings' 0 ("no limit") for requests
 * per minute and concurrent streams becomes a limit no client reaches.
 *
 * @example
 * limiter.acquire(limiterLimits(limitsFor(config.limits, client)), stream, reserve);
 */
export function limiterLimits(limits: Required<Limits>): Required<Limits> {
  return {
    ...limits,
    rpm: limits.rpm === 0 ? Number.MAX_SAFE_INTEGER : limits.rpm,
    maxStreams: limits.maxStreams === 0 ? Number.MAX_SAFE_INTEGER : limits.maxStreams,
  };
}

/**
 * Whether what the client spends is limited: a daily token or dollar budget applies to it, or the
 * proxy's spend ceiling. Then every request must have a bounded cost the proxy can see.
 *
 * @example
 * spendLimited(config, client); // true with the shipped DAILY_SPEND_LIMIT_USD of 10
 */
export function spendLimited(settings: { limits: LimitSettings; ceiling: CeilingSettings }, client: Client): boolean {
  const { tokensPerDay, usdPerDay } = limitsFor(settings.limits, client);
  return tokensPerDay !== null || usdPerDay !== null || settings.ceiling.dailyLimitUsd !== null;
}
