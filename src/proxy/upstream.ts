import type { Upstream } from "../config";
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

/** Paths that Azure serves per deployment (`/openai/deployments/<name>/…`); others are per resource. */
const AZURE_DEPLOYMENT_PATHS = new Set([
  "/chat/completions",
  "/completions",
  "/embeddings",
  "/images/generations",
  "/images/edits",
  "/images/variations",
  "/audio/speech",
  "/audio/transcriptions",
  "/audio/translations",
]);

/**
 * The upstream URL for a client path under `/v1` (e.g. `/chat/completions`), its query string and
 * the request's model. `openai`: the upstream's base URL, path and query. Azure with deployments:
 * `<endpoint>/openai/deployments/<deployment of the model>/<path>` for the paths served per
 * deployment, `<endpoint>/openai/<path>` for the rest, with the upstream's `api-version` (in place
 * of any the client sent); Azure's v1 API: `<endpoint>/openai/v1/<path>`. Whatever the path holds,
 * the result stays on the upstream's origin and under its base path.
 *
 * @throws ProxyError 400 `invalid_path` for a path that would climb out of the base path.
 * @example
 * upstreamUrl(openai, "/chat/completions", "?limit=2", "gpt-4o"); // https://api.openai.com/v1/chat/completions?limit=2
 * upstreamUrl(azure, "/chat/completions", "", "gpt-4o"); // https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21
 */
export function upstreamUrl(upstream: Upstream, path: string, search: string, model: string | null = null): string {
  const deployments = upstream.azure?.deployments ?? null;
  const deployed = deployments !== null && model !== null && AZURE_DEPLOYMENT_PATHS.has(path);
  const prefix = deployed
    ? `${upstream.baseUrl}/deployments/${encodeURIComponent(deployments.get(model) ?? model)}`
    : upstream.baseUrl;
  const url = new URL(prefix + path + search);
  if (url.origin !== upstream.baseOrigin || !url.pathname.startsWith(`${upstream.basePath}/`)) {
    throw new ProxyError(400, "request path is not a valid OpenAI API path", { code: "invalid_path" });
  }
  const apiVersion = upstream.azure?.apiVersion ?? null;
  if (apiVersion !== null) url.searchParams.set("api-version", apiVersion);
  return url.href;
}

/**
 * The headers sent upstream: the client's own (content type, `openai-beta`, SDK telemetry, …)
 * minus what never goes upstream (see `dropped`), plus the upstream's key (`Authorization: Bearer`,
 * or Azure's `api-key`) and its configured headers.
 *
 * @example
 * upstreamHeaders(upstream, upstream.keys[0], request.headers).get("authorization"); // "Bearer sk-…"
 */
export function upstreamHeaders(upstream: Upstream, key: string, client: Headers): Headers {
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
  for (const [name, value] of Object.entries(upstream.headers)) headers.set(name, value);
  if (upstream.kind === "azure") headers.set("api-key", key);
  else headers.set("authorization", `Bearer ${key}`);
  return headers;
}
