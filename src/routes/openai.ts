import type { Context } from "hono";
import { ProxyError } from "../errors";
import { requestJson } from "../middleware/body-limit";
import { forward } from "../proxy/forward";
import type { AppEnv } from "../types";
import { askForUsage } from "./usage-option";

/** Endpoints whose answers report token usage. */
const ACCOUNTED = new Set(["/chat/completions", "/completions", "/embeddings", "/responses"]);
const encoder = new TextEncoder();

/**
 * `/v1/*`: a faithful pass-through of the OpenAI API. Method, path below `/v1`, query string
 * and body bytes go upstream unchanged (never re-serialised, except to ask a chat stream for its
 * usage, or where the output cap must be added); streams come back as they arrive.
 */
export function openaiPassThrough(c: Context<AppEnv>): Promise<Response> {
  // The raw path, not Hono's decoded one, so that percent-encoding reaches upstream unchanged.
  const url = c.req.url;
  const pathAt = url.indexOf("/", url.indexOf("//") + 2);
  const queryAt = url.indexOf("?", pathAt);
  const rawPath = url.slice(pathAt, queryAt === -1 ? undefined : queryAt);
  if (!rawPath.startsWith("/v1/") || rawPath.length === "/v1/".length) {
    throw new ProxyError(404, `${c.req.method} ${c.req.path} is not a route of this proxy`, { code: "unknown_url" });
  }
  const path = rawPath.slice("/v1".length);
  // Decisions follow the decoded path, as the policy's do: `/v1/chat/%63ompletions` is still counted.
  const endpoint = c.req.path.slice("/v1".length);
  const info = c.get("info");
  const json = requestJson(c);
  if (typeof json?.model === "string") info.model = json.model;
  const account = c.req.method === "POST" && ACCOUNTED.has(endpoint);
  const dropUsageChunk =
    account &&
    json !== undefined &&
    (endpoint === "/chat/completions" || endpoint === "/completions") &&
    askForUsage(json);
  if (dropUsageChunk) c.set("body", encoder.encode(JSON.stringify(json)));
  return forward(
    c.get("config"),
    {
      method: c.req.method,
      path,
      search: queryAt === -1 ? "" : url.slice(queryAt),
      headers: c.req.raw.headers,
      body: c.get("body"),
      shape: "openai",
      account,
      dropUsageChunk,
    },
    c.req.raw.signal,
    info,
  );
}
