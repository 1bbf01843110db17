import type { Context } from "hono";
import type { AppEnv } from "../env";
import { forward } from "../proxy/forward";
import { respond } from "./forwarded";

/**
 * `POST /`: the original proxy's chat endpoint. The policy step has checked the request and filled
 * the original defaults; this sends it to `/chat/completions`, with errors in the original shape.
 */
export async function seedChat(c: Context<AppEnv>): Promise<Response> {
  const outgoing = c.get("outgoing");
  const forwarded = await forward(
    c.get("config").upstream,
    {
      method: "POST",
      path: "/chat/completions",
      search: "",
      headers: c.req.raw.headers,
      body: outgoing.body,
      replay: outgoing.replay,
      route: outgoing.route,
      model: outgoing.model,
      requestId: c.get("requestId"),
      logTries: c.get("config").usage.log,
      shape: "seed",
      readUsage: true,
      withoutUsageOption: outgoing.withoutUsageOption,
    },
    c.req.raw.signal,
  );
  return respond(c, forwarded);
}
