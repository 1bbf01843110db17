import type { Context } from "hono";
import { ProxyError } from "../errors";
import { forward } from "../proxy/forward";
import type { AppEnv } from "../types";

const decoder = new TextDecoder();

/**
 * `/v1/*`: a faithful pass-through of the OpenAI API. Method, path below `/v1`, query string
 * and body bytes go upstream unchanged (never re-serialised).
 */
export function openaiPassThrough(c: Context<AppEnv>): Promise<Response> {
  // The raw path, not Hono's decoded one, so that percent-encoding reaches upstream unchanged.
  const url = c.req.url;
  const pathAt = url.indexOf("/", url.indexOf("//") + 2);
  const queryAt = url.indexOf("?", pathAt);
  const path = url.slice(pathAt + "/v1".length, queryAt === -1 ? undefined : queryAt);
  if (path === "" || path === "/") {
    throw new ProxyError(404, `${c.req.method} ${c.req.path} is not a route of this proxy`, { code: "unknown_url" });
  }
  const body = c.get("body");
  const info = c.get("info");
  if (body !== null && (c.req.header("content-type") ?? "").startsWith("application/json")) {
    info.model = modelOf(body);
  }
  return forward(
    c.get("config"),
    {
      method: c.req.method,
      path,
      search: queryAt === -1 ? "" : url.slice(queryAt),
      headers: c.req.raw.headers,
      body,
    },
    c.req.raw.signal,
    info,
  );
}

/** The `model` of a JSON request body, for the log line; undefined when there is none. */
function modelOf(body: Uint8Array): string | undefined {
  try {
    const value: unknown = JSON.parse(decoder.decode(body));
    if (typeof value === "object" && value !== null && "model" in value && typeof value.model === "string") {
      return value.model;
    }
  } catch {
    // Not JSON after all: upstream will say so.
  }
  return undefined;
}
