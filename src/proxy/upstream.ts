import type { ReadyUpstream, UpstreamSettings } from "../config";
import { ProxyError } from "../errors";

/**
 * Client headers that never go upstream: credentials, routing and client identity; the hop-by-hop
 * headers of RFC 9110 §7.6.1 (they describe the client's connection to the proxy, not the proxy's
 * to upstream); `expect`, whose `100-continue` would make upstream answer with an interim response;
 * the body's length and encoding, which the runtime sets for the body it sends.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  "authorization",
  "api-key",
  "x-api-key",
  "cookie",
  "host",
  "origin",
  "referer",
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "openai-organization",
  "openai-project",
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "expect",
  "content-length",
  "accept-encoding",
]);

/**
 * Whether a client header never goes upstream: `DROPPED_REQUEST_HEADERS`, `cf-*`, `x-forwarded-*`,
 * `sec-*`, and any header the client's `Connection` header names (hop-by-hop by declaration).
 */
function dropped(name: string, connection: ReadonlySet<string>): boolean {
  return (
    DROPPED_REQUEST_HEADERS.has(name) ||
    connection.has(name) ||
    name.startsWith("cf-") ||
    name.startsWith("x-forwarded-") ||
    name.startsWith("sec-")
  );
}

/**
 * The upstream URL for a client path under `/v1` (e.g. `/chat/completions`) and its query string.
 * Whatever the path holds, the result stays on `OPENAI_BASE_URL`'s origin and under its path.
 *
 * @example
 * upstreamUrl(config.upstream, "/chat/completions", "?limit=2") // https://api.openai.com/v1/chat/completions?limit=2
 */
export function upstreamUrl(settings: UpstreamSettings, path: string, search: string): string {
  const url = new URL(settings.baseUrl + path + search);
  if (url.origin !== settings.baseOrigin || !url.pathname.startsWith(`${settings.basePath}/`)) {
    throw new ProxyError(400, "request path is not a valid OpenAI API path", { code: "invalid_path" });
  }
  return url.href;
}

/**
 * The headers sent upstream: the client's own (content type, `openai-beta`, SDK telemetry, …)
 * minus what never goes upstream (see `dropped`), plus the operator's key, organization and project.
 */
export function upstreamHeaders(settings: ReadyUpstream, client: Headers): Headers {
  const headers = new Headers();
  const connection = new Set(
    (client.get("connection") ?? "")
      .split(",")
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== ""),
  );
  for (const [name, value] of client) {
    if (!dropped(name, connection)) headers.set(name, value);
  }
  headers.set("authorization", `Bearer ${settings.apiKey}`);
  if (settings.organization !== undefined) headers.set("openai-organization", settings.organization);
  if (settings.project !== undefined) headers.set("openai-project", settings.project);
  return headers;
}
