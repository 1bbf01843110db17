import type { ReadyUpstream } from "../config";
import { type ErrorShape, ProxyError } from "../errors";
import { JsonUsageReader } from "../usage/json-usage";
import type { Ending, Outcome } from "../usage/spend";
import { SseUsageReader } from "../usage/sse-usage";
import { isPassed } from "./client-headers";
import { passThroughSse } from "./sse";
import { SseFramer } from "./sse-framing";
import { upstreamHeaders, upstreamUrl } from "./upstream";
import { upstreamErrorBody } from "./upstream-errors";

/** A request body within the size limit: bytes when read into memory, a stream when passed through, null when absent. */
export type RequestBody = Uint8Array | ReadableStream<Uint8Array> | null;

/** What the route asks of upstream: a path under `OPENAI_BASE_URL`, what to send there, and how to stream back. */
export type UpstreamCall = {
  method: string;
  /** Path below the base URL, starting with `/`: `/chat/completions`. */
  path: string;
  /** The client's query string, `?…` or empty. */
  search: string;
  headers: Headers;
  body: RequestBody;
  /** The route's error shape, for the in-band error event of a cut stream. */
  shape: ErrorShape;
  /** Read the answer's `usage` as it passes (a POST: what it spent), JSON or SSE, whatever the path. */
  readUsage: boolean;
  /** The proxy added `stream_options.include_usage` itself: take upstream's usage chunk out of the client's stream. */
  dropUsageChunk: boolean;
};

/**
 * What `forward` gives back: the client's response, or the error to answer with instead, and
 * always the request's outcome, which settles once the answer is over (at once for an error).
 */
export type Forwarded = ({ response: Response; error?: undefined } | { response?: undefined; error: ProxyError }) & {
  outcome: Promise<Outcome>;
};

/** Times an outcome carries: when upstream's headers and its first output came, in ms since the epoch. */
export type OutcomeTimes = { headersAt: number | null; firstOutputAt: number | null };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([204, 205, 304]);

/**
 * Sends `call` upstream with the operator's key and turns the answer into the client's response:
 * status, body and useful headers unchanged; SSE passed through as it arrives; redirects not
 * followed; upstream 401 hidden behind a generic 502 (OpenAI's 401 body echoes part of the key), its
 * other errors passed on with anything key-like redacted; a status that is not a final answer
 * (1xx, over 599) a 502. No response headers within `UPSTREAM_TIMEOUT_MS` gives a 504 that tells
 * SDKs not to retry; the client going away cancels upstream.
 * Never throws for what upstream does: every way the call can end is a `Forwarded` with its outcome.
 *
 * @example
 * const { response, error, outcome } = await forward(config.upstream, call, c.req.raw.signal);
 */
export async function forward(
  settings: ReadyUpstream,
  call: UpstreamCall,
  clientSignal: AbortSignal,
): Promise<Forwarded> {
  const what = `${call.method} ${settings.basePath}${call.path}`;
  const url = upstreamUrl(settings, call.path, call.search);
  const headers = upstreamHeaders(settings, call.headers);
  if (clientSignal.aborted) return failed(clientClosed(what), "not_sent");

  const abort = new AbortController();
  const onClientAbort = () => abort.abort("client went away");
  clientSignal.addEventListener("abort", onClientAbort);
  const release = () => clientSignal.removeEventListener("abort", onClientAbort);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort("upstream timed out");
  }, settings.timeoutMs);

  let upstream: Response;
  try {
    upstream = await fetch(url, {
      method: call.method,
      headers,
      body: call.body,
      redirect: "manual",
      signal: abort.signal,
    });
  } catch (cause) {
    release();
    if (timedOut) {
      const message = `${what}: upstream sent no response within ${settings.timeoutMs} ms`;
      // Upstream may still be generating: a retry would start the same paid work again.
      const error = new ProxyError(504, message, { code: "upstream_timeout", retryable: false, cause });
      return failed(error, "timeout");
    }
    if (clientSignal.aborted) return failed(clientClosed(what), "client_closed");
    const error = new ProxyError(502, `${what}: upstream is unreachable`, { code: "upstream_unreachable", cause });
    return failed(error, "unreachable");
  } finally {
    clearTimeout(timer);
  }
  const times: OutcomeTimes = { headersAt: Date.now(), firstOutputAt: null };
  const status = upstream.status;

  if (status === 401 || REDIRECTS.has(status) || status < 200 || status > 599) {
    release();
    await upstream.body?.cancel().catch(() => {});
    const [reason, code] = REDIRECTS.has(status)
      ? (["upstream answered with a redirect, which the proxy does not follow", "upstream_redirect"] as const)
      : status === 401
        ? ([
            "upstream refused the proxy's credentials; the operator should check them",
            "upstream_auth_failed",
          ] as const)
        : ([`upstream answered with status ${status}, which is not a final answer`, "upstream_bad_response"] as const);
    return failed(
      new ProxyError(502, `${what}: ${reason}`, { code, retryable: false }),
      "upstream_error",
      status,
      times,
    );
  }
  if (status >= 400) {
    // Upstream's own error, as it sent it, less anything that looks like a key.
    release();
    const { body, json, regionBlocked } = await upstreamErrorBody(upstream, settings.apiKey);
    const responseHeaders = keptHeaders(upstream.headers, false);
    if (json) responseHeaders.set("content-type", "application/json");
    if (regionBlocked) responseHeaders.set("x-should-retry", "false");
    const response = new Response(body, { status, headers: responseHeaders });
    return { response, outcome: Promise.resolve(settle("upstream_error", status, false, times)) };
  }

  const contentType = upstream.headers.get("content-type") ?? "";
  const ok = status >= 200 && status < 300;
  if (upstream.body !== null && contentType.startsWith("text/event-stream")) {
    const responseHeaders = keptHeaders(upstream.headers, false);
    responseHeaders.set("cache-control", "no-cache, no-transform");
    const reader = ok && call.readUsage ? new SseUsageReader({ dropUsageChunk: call.dropUsageChunk }) : null;
    const { body, done } = passThroughSse(upstream.body, {
      idleTimeoutMs: settings.streamIdleTimeoutMs,
      shape: call.shape,
      framer: new SseFramer(reader),
      onChunk: () => {
        if (times.firstOutputAt === null && (reader === null || reader.contentEvents > 0))
          times.firstOutputAt = Date.now();
      },
    });
    const outcome = done
      .finally(release)
      .then(
        (ending): Outcome =>
          ok
            ? settle(ending, status, true, times, reader?.usage ?? null, reader?.contentEvents ?? 0)
            : settle("upstream_error", status, true, times),
      );
    return { response: new Response(body, { status, headers: responseHeaders }), outcome };
  }
  release();
  // 204, 205 and 304 carry no body, whatever upstream sent.
  let body = NULL_BODY.has(status) ? null : upstream.body;
  let outcome: Promise<Outcome>;
  if (call.readUsage && body !== null && contentType.startsWith("application/json")) {
    // A native tee: the client's half streams on; the proxy's half is read for `usage` as it
    // arrives, holding nothing but the usage itself, and keeps reading if the client leaves.
    const [forClient, forUsage] = body.tee();
    body = forClient;
    outcome = readJsonUsage(forUsage).then(
      (usage) => settle("complete", status, false, { ...times, firstOutputAt: times.headersAt }, usage),
      () => settle("cut", status, false, times),
    );
  } else {
    outcome = Promise.resolve(settle("complete", status, false, { ...times, firstOutputAt: times.headersAt }));
  }
  return { response: new Response(body, { status, headers: keptHeaders(upstream.headers, true) }), outcome };
}

async function readJsonUsage(body: ReadableStream<Uint8Array>): Promise<JsonUsageReader["usage"]> {
  const reader = new JsonUsageReader();
  for await (const chunk of body) reader.push(chunk);
  return reader.usage;
}

function settle(
  ending: Ending,
  upstreamStatus: number | null,
  stream: boolean,
  times: OutcomeTimes,
  usage: Outcome["usage"] = null,
  outputEvents = 0,
): Outcome {
  return { ending, upstreamStatus, stream, usage, outputEvents, ...times };
}

function failed(
  error: ProxyError,
  ending: Ending,
  upstreamStatus: number | null = null,
  times: OutcomeTimes = { headersAt: null, firstOutputAt: null },
): Forwarded {
  return { error, outcome: Promise.resolve(settle(ending, upstreamStatus, false, times)) };
}

function clientClosed(what: string): ProxyError {
  return new ProxyError(499, `${what}: the client closed the request`, { code: "client_closed" });
}

/** The upstream headers a client should see (`isPassed`) and, when the body is unchanged, its length. */
function keptHeaders(upstream: Headers, keepLength: boolean): Headers {
  const headers = new Headers();
  for (const [name, value] of upstream) {
    if (isPassed(name)) headers.set(name, value);
  }
  const length = upstream.get("content-length");
  if (keepLength && length !== null && !upstream.has("content-encoding")) headers.set("content-length", length);
  return headers;
}
