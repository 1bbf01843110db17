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
 * deployment, `<endpoint>/openai/<path>` for the rest (Realtime with `deployment=` in its query),
 * with the upstream's `api-version`, never the client's `api-version` or `deployment`; Azure's v1
 * API: `<endpoint>/openai/v1/<path>`. Whatever the path holds, the result stays on the upstream's
 * origin and under its base path.
 *
 * @throws ProxyError 400 `invalid_path` for a path that would climb out of the base path, or name an
 * Azure deployment itself (`/deployments/…`).
 * @example
 * upstreamUrl(openai, "/chat/completions", "?limit=2", "gpt-4o"); // https://api.openai.com/v1/chat/completions?limit=2
 * upstreamUrl(azure, "/chat/completions", "", "gpt-4o"); // https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21
 */
export function upstreamUrl(upstream: Upstream, path: string, search: string, model: string | null = null): string {
  const azure = upstream.azure;
  const deployments = azure?.deployments ?? null;
  // An Azure deployment is the operator's choice, by model: never one a client names in its path or query.
  if (azure !== null && /^\/deployments(\/|$)/i.test(decodeURIComponent(path))) throw invalidPath();
  const deployment = deployments !== null && model !== null ? (deployments.get(model) ?? model) : null;
  const perDeployment = deployment !== null && AZURE_DEPLOYMENT_PATHS.has(path);
  const prefix = perDeployment ? `${upstream.baseUrl}/deployments/${encodeURIComponent(deployment)}` : upstream.baseUrl;
  let query = search;
  if (azure !== null) {
    // The client's query string as it came (its encoding kept), less what only the operator sets.
    const kept = search
      .replace(/^\?/, "")
      .split("&")
      .filter((pair) => pair !== "" && !/^(api-version|deployment)(=|$)/i.test(decodeURIComponent(pair)));
    if (azure.apiVersion !== null) kept.push(`api-version=${encodeURIComponent(azure.apiVersion)}`);
    // Azure's Realtime API names its deployment in the query string.
    if (deployment !== null && path === "/realtime") kept.push(`deployment=${encodeURIComponent(deployment)}`);
    query = kept.length > 0 ? `?${kept.join("&")}` : "";
  }
  const url = new URL(prefix + path + query);
  if (url.origin !== upstream.baseOrigin || !url.pathname.startsWith(`${upstream.basePath}/`)) throw invalidPath();
  return url.href;
}

function invalidPath(): ProxyError {
  return new ProxyError(400, "request path is not a valid OpenAI API path", { code: "invalid_path" });
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
