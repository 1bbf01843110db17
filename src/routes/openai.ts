import type { Context } from "hono";
import { ProxyError } from "../errors";
import { forward } from "../proxy/forward";
import type { AppEnv } from "../types";

const decoder = new TextDecoder();
/** How much of a JSON body is scanned for `model`, for the log line; the body itself is never parsed here. */
const MODEL_SCAN_BYTES = 4096;
const MODEL_FIELD = /"model"\s*:\s*"([^"\\]{1,200})"/;

/**
 * `/v1/*`: a faithful pass-through of the OpenAI API. Method, path below `/v1`, query string
 * and body bytes go upstream unchanged (never re-serialised); streams come back as they arrive.
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
  const body = c.get("body");
  const info = c.get("info");
  if (body instanceof Uint8Array) info.model = modelOf(body);
  return forward(
    c.get("config"),
    {
      method: c.req.method,
      path: rawPath.slice("/v1".length),
      search: queryAt === -1 ? "" : url.slice(queryAt),
      headers: c.req.raw.headers,
      body,
      shape: "openai",
      alignLines: false,
    },
    c.req.raw.signal,
    info,
  );
}

/** The `model` named near the start of a JSON body, for the log line; undefined when there is none. */
export function modelOf(body: Uint8Array): string | undefined {
  const head = decoder.decode(body.byteLength > MODEL_SCAN_BYTES ? body.subarray(0, MODEL_SCAN_BYTES) : body);
  return MODEL_FIELD.exec(head)?.[1];
}
