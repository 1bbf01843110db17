import type { RateLimiter } from "./rate-limiter";

/**
 * The limiter for one client identity: `"key:web"` (a client key's name), `"sub:alice"` (a token's
 * subject), `"ip:203.0.113.9"` (open mode). The same identity reaches the same object from anywhere.
 *
 * @example
 * const admission = await limiterFor(env.RATE_LIMITER, "key:web").acquire({ rpm: 60, maxStreams: 5 }, false);
 */
export function limiterFor(
  namespace: DurableObjectNamespace<RateLimiter>,
  clientId: string,
): DurableObjectStub<RateLimiter> {
  return namespace.getByName(clientId);
}
