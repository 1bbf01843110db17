import type { Context } from "hono";
import type { AppEnv } from "../env";
import { notFound } from "../errors";
import { forward } from "../proxy/forward";
import { respond } from "./forwarded";

/**
 * `/v1/*`: a faithful pass-through of the OpenAI API. Method, path below `/v1` (as the client
 * encoded it), query string and body go upstream unchanged, except where the policy step rewrote
 * the body; streams come back as they arrive.
 */
export async function openaiPassThrough(c: Context<AppEnv>): Promise<Response> {
  // The raw path, not Hono's decoded one, so that percent-encoding reaches upstream unchanged.
  const url = c.req.url;
  const pathAt = url.indexOf("/", url.indexOf("//") + 2);
  const queryAt = url.indexOf("?", pathAt);
  const rawPath = url.slice(pathAt, queryAt === -1 ? undefined : queryAt);
  if (!rawPath.startsWith("/v1/") || rawPath.length === "/v1/".length) throw notFound(c.req.method, c.req.path);
  const outgoing = c.get("outgoing");
  const forwarded = await forward(
    c.get("config").upstream,
    {
      method: c.req.method,
      path: rawPath.slice("/v1".length),
      search: queryAt === -1 ? "" : url.slice(queryAt),
      headers: c.req.raw.headers,
      body: outgoing.body,
      shape: "openai",
      readUsage: c.req.method === "POST",
      withoutUsageOption: outgoing.withoutUsageOption,
    },
    c.req.raw.signal,
  );
  return respond(c, forwarded);
}
