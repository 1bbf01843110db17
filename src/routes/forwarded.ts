import type { Context } from "hono";
import type { AppEnv } from "../env";
import type { ErrorShape } from "../errors";
import { type Forwarded, forward } from "../proxy/forward";

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

/**
 * Sends the request the policy step prepared (`outgoing`: body, route, model…) to `target`'s path
 * below `/v1`, and answers as `respond` does: the one place a route turns its request into an
 * upstream call.
 *
 * @example
 * return forwardOutgoing(c, { method: "POST", path: "/chat/completions", search: "", shape: "seed", readUsage: true });
 */
export async function forwardOutgoing(
  c: Context<AppEnv>,
  target: { method: string; path: string; search: string; shape: ErrorShape; readUsage: boolean },
): Promise<Response> {
  const outgoing = c.get("outgoing");
  const config = c.get("config");
  const forwarded = await forward(
    config.upstream,
    {
      ...target,
      headers: c.req.raw.headers,
      body: outgoing.body,
      replay: outgoing.replay,
      route: outgoing.route,
      model: outgoing.model,
      requestId: c.get("requestId"),
      logTries: config.usage.log,
      withoutUsageOption: outgoing.withoutUsageOption,
    },
    c.req.raw.signal,
  );
  return respond(c, forwarded);
}
