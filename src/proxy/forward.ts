import type { ReadyConfig } from "../config";
import { type ErrorShape, ProxyError } from "../errors";
import type { RequestBody, RequestInfo } from "../types";
import { createStreamTap } from "../usage/stream-tap";
import { usageFromBody } from "../usage/usage";
import { passThroughSse } from "./sse";
import { upstreamHeaders, upstreamUrl } from "./upstream";

/** What the route asks of upstream: a path under `OPENAI_BASE_URL`, what to send there, and how to stream back. */
export type UpstreamCall = {
  method: string;
  /** Path below the base URL, starting with `/`: `/chat/completions`. */
  path: string;
  /** The client's query string, `?…` or empty. */
  search: string;
  headers: Headers;
  body: RequestBody | string;
  /** The route's error shape, for the in-band error event of a cut stream. */
  shape: ErrorShape;
  /** The endpoint reports token usage (chat, completions, embeddings, responses): read it as the response passes. */
  account: boolean;
  /** The proxy added `stream_options.include_usage` itself: take upstream's usage chunk out of the client's stream. */
  dropUsageChunk: boolean;
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
  "etag",
  "last-modified",
]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Sends `call` upstream with the operator's key and turns the answer into the client's response:
 * status, body and useful headers unchanged; SSE passed through as it arrives; redirects not
 * followed; upstream 401/403 hidden behind a generic 502 (OpenAI's 401 body echoes part of the key).
 * No response headers within `UPSTREAM_TIMEOUT_MS` gives 504; the client going away cancels upstream.
 *
 * @example
 * return forward(config, { method: "POST", path: "/chat/completions", search: "", headers, body, shape: "openai", account: false, dropUsageChunk: false }, c.req.raw.signal, info);
 */
export async function forward(
  config: ReadyConfig,
  call: UpstreamCall,
  clientSignal: AbortSignal,
  info: RequestInfo,
): Promise<Response> {
  const what = `${call.method} ${config.basePath}${call.path}`;
  const url = upstreamUrl(config, call.path, call.search);
  const headers = upstreamHeaders(config, call.headers);
  if (clientSignal.aborted) throw clientClosed(what);

  const abort = new AbortController();
  const onClientAbort = () => abort.abort("client went away");
  clientSignal.addEventListener("abort", onClientAbort);
  const release = () => clientSignal.removeEventListener("abort", onClientAbort);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort("upstream timed out");
  }, config.upstreamTimeoutMs);

  let upstream: Response;
  try {
    upstream = await fetch(url, {
      method: call.method,
      headers,
      body: call.body,
      redirect: "manual",
      signal: abort.signal,
    });
  } catch {
    release();
    if (timedOut) {
      throw new ProxyError(504, `${what}: upstream sent no response within ${config.upstreamTimeoutMs} ms`, {
        code: "upstream_timeout",
      });
    }
    if (clientSignal.aborted) throw clientClosed(what);
    throw new ProxyError(502, `${what}: upstream is unreachable`, { code: "upstream_unreachable" });
  } finally {
    clearTimeout(timer);
  }
  info.upstreamStatus = upstream.status;
  info.ttfbMs = Date.now() - info.startedAt;

  if (upstream.status === 401 || upstream.status === 403 || REDIRECTS.has(upstream.status)) {
    release();
    await upstream.body?.cancel().catch(() => {});
    const reason = REDIRECTS.has(upstream.status)
      ? ["upstream answered with a redirect, which the proxy does not follow", "upstream_redirect"]
      : ["upstream refused the proxy's credentials; the operator should check them", "upstream_auth_failed"];
    throw new ProxyError(502, `${what}: ${reason[0]}`, { code: reason[1], retryable: false });
  }

  const contentType = upstream.headers.get("content-type") ?? "";
  if (upstream.body !== null && contentType.startsWith("text/event-stream")) {
    const responseHeaders = keptHeaders(upstream.headers, false);
    responseHeaders.set("cache-control", "no-cache, no-transform");
    const tap = call.account ? createStreamTap({ dropUsageChunk: call.dropUsageChunk }) : null;
    const { body, done, firstContentAt } = passThroughSse(upstream.body, {
      idleTimeoutMs: config.streamIdleTimeoutMs,
      shape: call.shape,
      tap,
    });
    info.stream = true;
    info.done = done.finally(release);
    if (tap !== null) {
      info.accounting = info.done.then((outcome) => {
        const usage = tap.usage;
        const first = firstContentAt();
        return {
          usage,
          tokens:
            usage === null
              ? estimateTokens(call.body) + tap.contentEvents
              : usage.promptTokens + usage.completionTokens,
          incomplete: outcome !== "complete" || usage === null,
          ttftMs: first === null ? null : first - info.startedAt,
        };
      });
    }
    return new Response(body, { status: upstream.status, headers: responseHeaders });
  }
  release();
  let body = upstream.body;
  if (call.account && body !== null && upstream.ok && contentType.startsWith("application/json")) {
    // A native tee: the client's half streams on; the proxy reads usage from its own half after the response.
    const [forClient, forUsage] = body.tee();
    body = forClient;
    info.accounting = new Response(forUsage).json().then(
      (json: unknown) => {
        const usage = usageFromBody(json);
        return {
          usage,
          tokens: usage === null ? null : usage.promptTokens + usage.completionTokens,
          incomplete: false,
          ttftMs: info.ttfbMs ?? null,
        };
      },
      () => null,
    );
  } else {
    // Errors, and endpoints that count no tokens, use none.
    info.accounting = Promise.resolve({ usage: null, tokens: 0, incomplete: false, ttftMs: null });
  }
  return new Response(body, { status: upstream.status, headers: keptHeaders(upstream.headers, true) });
}

/** About one token per four bytes of request: the budget's estimate of input a request did not report. */
function estimateTokens(body: UpstreamCall["body"]): number {
  if (typeof body === "string") return Math.ceil(body.length / 4);
  return body instanceof Uint8Array ? Math.ceil(body.byteLength / 4) : 0;
}

function clientClosed(what: string): ProxyError {
  return new ProxyError(499, `${what}: the client closed the request`, { code: "client_closed" });
}

/** The upstream headers a client should see: `KEPT_RESPONSE_HEADERS`, `x-ratelimit-*`, and, when the body is unchanged, its length. */
function keptHeaders(upstream: Headers, keepLength: boolean): Headers {
  const headers = new Headers();
  for (const [name, value] of upstream) {
    if (KEPT_RESPONSE_HEADERS.has(name) || name.startsWith("x-ratelimit-")) headers.set(name, value);
  }
  const length = upstream.get("content-length");
  if (keepLength && length !== null && !upstream.has("content-encoding")) headers.set("content-length", length);
  return headers;
}
