import { ProxyError } from "../errors";
import type { ReadyConfig, RequestInfo } from "../types";
import { passThroughSse } from "./sse";
import { upstreamHeaders, upstreamUrl } from "./upstream";

/** What the route asks of upstream: a path under `OPENAI_BASE_URL`, and what to send there. */
export type UpstreamCall = {
  method: string;
  /** Path below the base URL, starting with `/`: `/chat/completions`. */
  path: string;
  /** The client's query string, `?…` or empty. */
  search: string;
  headers: Headers;
  body: Uint8Array | string | null;
};

/** Upstream response headers worth passing on; everything else (cookies, org names, CDN headers) stays behind. */
const KEPT_RESPONSE_HEADERS = new Set([
  "content-type",
  "content-disposition",
  "x-request-id",
  "openai-processing-ms",
  "openai-version",
  "retry-after",
  "retry-after-ms",
]);

/**
 * Sends `call` upstream with the operator's key and turns the answer into the client's response:
 * status, body and useful headers unchanged; SSE passed through as it arrives; redirects not
 * followed; upstream 401/403 hidden behind a generic 502 (OpenAI's 401 body echoes part of the key).
 * No response headers within `UPSTREAM_TIMEOUT_MS` gives 504; the client going away cancels upstream.
 *
 * @example
 * return forward(config, { method: "POST", path: "/chat/completions", search: "", headers, body }, c.req.raw.signal, info);
 */
export async function forward(
  config: ReadyConfig,
  call: UpstreamCall,
  clientSignal: AbortSignal,
  info: RequestInfo,
): Promise<Response> {
  const url = upstreamUrl(config, call.path, call.search);
  const abort = new AbortController();
  const onClientAbort = () => abort.abort("client went away");
  clientSignal.addEventListener("abort", onClientAbort);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort("upstream timed out");
  }, config.upstreamTimeoutMs);
  const what = `${call.method} ${config.basePath}${call.path}`;

  let upstream: Response;
  try {
    upstream = await fetch(url, {
      method: call.method,
      headers: upstreamHeaders(config, call.headers),
      body: call.body,
      redirect: "manual",
      signal: abort.signal,
    });
  } catch {
    clientSignal.removeEventListener("abort", onClientAbort);
    if (timedOut) {
      throw new ProxyError(504, `${what}: upstream sent no response within ${config.upstreamTimeoutMs} ms`, {
        code: "upstream_timeout",
      });
    }
    if (clientSignal.aborted)
      throw new ProxyError(499, `${what}: the client closed the request`, { code: "client_closed" });
    throw new ProxyError(502, `${what}: upstream is unreachable`, { code: "upstream_unreachable" });
  } finally {
    clearTimeout(timer);
  }
  info.upstreamStatus = upstream.status;
  info.ttfbMs = Date.now() - info.startedAt;

  if (upstream.status === 401 || upstream.status === 403) {
    await upstream.body?.cancel();
    clientSignal.removeEventListener("abort", onClientAbort);
    throw new ProxyError(502, `${what}: upstream refused the proxy's credentials; the operator should check them`, {
      code: "upstream_auth_failed",
    });
  }
  if (upstream.status >= 300 && upstream.status < 400) {
    await upstream.body?.cancel();
    clientSignal.removeEventListener("abort", onClientAbort);
    throw new ProxyError(502, `${what}: upstream answered with a redirect, which the proxy does not follow`, {
      code: "upstream_redirect",
    });
  }

  const headers = responseHeaders(upstream.headers);
  const contentType = upstream.headers.get("content-type") ?? "";
  if (upstream.body !== null && contentType.startsWith("text/event-stream")) {
    headers.set("cache-control", "no-cache, no-transform");
    const { body, done } = passThroughSse(upstream.body, config.upstreamTimeoutMs);
    info.stream = true;
    info.done = done.finally(() => clientSignal.removeEventListener("abort", onClientAbort));
    return new Response(body, { status: upstream.status, headers });
  }
  clientSignal.removeEventListener("abort", onClientAbort);
  return new Response(upstream.body, { status: upstream.status, headers });
}

/** The upstream headers a client should see: `KEPT_RESPONSE_HEADERS`, `x-ratelimit-*`, and an honest length. */
function responseHeaders(upstream: Headers): Headers {
  const headers = new Headers();
  for (const [name, value] of upstream) {
    if (KEPT_RESPONSE_HEADERS.has(name) || name.startsWith("x-ratelimit-")) headers.set(name, value);
  }
  const length = upstream.get("content-length");
  if (length !== null && !upstream.has("content-encoding")) headers.set("content-length", length);
  return headers;
}
