import type { Context } from "hono";
import type { AppEnv } from "../env";
import type { Forwarded } from "../proxy/forward";

/**
 * Hands a forwarded request's outcome to the accounting step and answers with its response, or
 * throws its error for the app's one error renderer.
 *
 * @example
 * return respond(c, await forward(config.upstream, call, c.req.raw.signal));
 */
export function respond(c: Context<AppEnv>, forwarded: Forwarded): Response {
  c.set("outcome", forwarded.outcome);
  if (forwarded.error !== undefined) throw forwarded.error;
  return forwarded.response;
}
