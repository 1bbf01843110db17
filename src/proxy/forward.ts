import type { ReadyUpstream } from "../config";
import { type ErrorShape, ProxyError } from "../errors";
import { JsonUsageReader } from "../usage/json-usage";
import type { Ending, Outcome } from "../usage/spend";
import { SseUsageReader } from "../usage/sse-usage";
import { isPassed } from "./client-headers";
import { refusesAddedField, rememberRefusesStreamOptions } from "./quirks";
import { passThroughSse } from "./sse";
import { SseFramer } from "./sse-framing";
import { upstreamHeaders, upstreamUrl } from "./upstream";
import { readLimited, upstreamErrorBody } from "./upstream-errors";

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
  /**
   * The proxy added `stream_options.include_usage`: the body without it, for an upstream that
   * refuses the field (then upstream's usage chunk is not taken out either, as none comes); null
   * when the proxy added nothing.
   */
  withoutUsageOption: AddedUsageOption | null;
};

/**
 * What the proxy added to a stream so that its usage can be read, and the request without it:
 * `stream_options` whole (the client sent none), or only `include_usage` inside the client's own.
 */
export type AddedUsageOption = {
  added: "stream_options" | "include_usage";
  /** The body without the addition: the client's own bytes, or them with the proxy's other changes. */
  without: () => RequestBody;
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

/** One try: upstream's answer, or how the try failed before there was one. */
type Try = { upstream: Response; headersAt: number } | { failure: Forwarded };

/**
 * Sends `call` upstream with the operator's key and turns the answer into the client's response:
 * status, body and useful headers unchanged; SSE passed through as it arrives; redirects not
 * followed; upstream 401 hidden behind a generic 502 (OpenAI's 401 body echoes part of the key), its
 * other errors passed on with anything key-like redacted; a status that is not a final answer
 * (1xx, over 599) a 502. No response headers within `UPSTREAM_TIMEOUT_MS` gives a 504 that tells
 * SDKs not to retry; the client going away cancels upstream. When the proxy added
 * `stream_options` and upstream refuses the field (400, before anything reached the client), the
 * client's request is sent once more without it, and the isolate stops adding it there.
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

  let tried = await send(settings, what, { url, method: call.method, headers, body: call.body }, clientSignal);
  let dropUsageChunk = call.withoutUsageOption !== null;
  if ("upstream" in tried && tried.upstream.status === 400 && call.withoutUsageOption !== null) {
    const text = await readLimited(tried.upstream);
    if (refusesAddedField(text, call.withoutUsageOption.added)) {
      // Nothing the proxy adds may make a request fail that would succeed unchanged.
      dropUsageChunk = false;
      const body = call.withoutUsageOption.without();
      tried = await send(settings, what, { url, method: call.method, headers, body }, clientSignal);
      // Remembered only when the request then succeeds: a 400 that merely echoes the words (a
      // client's own bad value) must not stop usage being read for everyone else.
      if ("upstream" in tried && tried.upstream.ok) rememberRefusesStreamOptions(settings.baseUrl);
    } else {
      tried = { upstream: new Response(text, tried.upstream), headersAt: tried.headersAt };
    }
  }
  if ("failure" in tried) return tried.failure;
  return answer(settings, call, what, { ...tried, dropUsageChunk, clientSignal });
}

/** One request upstream, with the timeout and the client's abort; never throws. */
async function send(
  settings: ReadyUpstream,
  what: string,
  request: { url: string; method: string; headers: Headers; body: RequestBody },
  clientSignal: AbortSignal,
): Promise<Try> {
  const abort = new AbortController();
  const onClientAbort = () => abort.abort("client went away");
  clientSignal.addEventListener("abort", onClientAbort);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort("upstream timed out");
  }, settings.timeoutMs);
  try {
    const upstream = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
      signal: abort.signal,
    });
    return { upstream, headersAt: Date.now() };
  } catch (cause) {
    if (timedOut) {
      const message = `${what}: upstream sent no response within ${settings.timeoutMs} ms`;
      // Upstream may still be generating: a retry would start the same paid work again.
      return {
        failure: failed(new ProxyError(504, message, { code: "upstream_timeout", retryable: false, cause }), "timeout"),
      };
    }
    if (clientSignal.aborted) return { failure: failed(clientClosed(what), "client_closed") };
    const error = new ProxyError(502, `${what}: upstream is unreachable`, { code: "upstream_unreachable", cause });
    return { failure: failed(error, "unreachable") };
  } finally {
    clearTimeout(timer);
    // Once upstream has answered, a stream watches the client itself (see passThroughSse).
    clientSignal.removeEventListener("abort", onClientAbort);
  }
}

/** Upstream's answer as the client's response, with the outcome it will settle at. */
async function answer(
  settings: ReadyUpstream,
  call: UpstreamCall,
  what: string,
  tried: { upstream: Response; headersAt: number; dropUsageChunk: boolean; clientSignal: AbortSignal },
): Promise<Forwarded> {
  const { upstream, headersAt, dropUsageChunk, clientSignal } = tried;
  const times: OutcomeTimes = { headersAt, firstOutputAt: null };
  const status = upstream.status;
  if (status === 401 || REDIRECTS.has(status) || status < 200 || status > 599) {
    await upstream.body?.cancel().catch(() => {});
    const [reason, code] = REDIRECTS.has(status)
      ? (["upstream answered with a redirect, which the proxy does not follow", "upstream_redirect"] as const)
      : status === 401
        ? ([
            "upstream refused the proxy's credentials; the operator should check them",
            "upstream_auth_failed",
          ] as const)
        : ([`upstream answered with status ${status}, which is not a final answer`, "upstream_bad_response"] as const);
    const error = new ProxyError(502, `${what}: ${reason}`, { code, retryable: false });
    return failed(error, "upstream_error", status, times);
  }
  if (status >= 400) {
    // Upstream's own error, as it sent it, less anything that looks like a key.
    const { body, json, regionBlocked } = await upstreamErrorBody(upstream, settings.apiKey);
    const responseHeaders = keptHeaders(upstream.headers, false);
    if (json) responseHeaders.set("content-type", "application/json");
    if (regionBlocked) responseHeaders.set("x-should-retry", "false");
    const response = new Response(body, { status, headers: responseHeaders });
    return { response, outcome: Promise.resolve(settle("upstream_error", status, false, times)) };
  }

  const contentType = upstream.headers.get("content-type") ?? "";
  if (upstream.body !== null && contentType.startsWith("text/event-stream")) {
    const responseHeaders = keptHeaders(upstream.headers, false);
    responseHeaders.set("cache-control", "no-cache, no-transform");
    const reader = call.readUsage ? new SseUsageReader({ dropUsageChunk }) : null;
    const { body, done } = passThroughSse(upstream.body, {
      idleTimeoutMs: settings.streamIdleTimeoutMs,
      shape: call.shape,
      framer: new SseFramer(reader),
      clientSignal,
      onChunk: () => {
        if (times.firstOutputAt === null && (reader === null || reader.contentEvents > 0)) {
          times.firstOutputAt = Date.now();
        }
      },
    });
    const outcome = done.then(
      (ending): Outcome => settle(ending, status, true, times, reader?.usage ?? null, reader?.contentEvents ?? 0),
    );
    return { response: new Response(body, { status, headers: responseHeaders }), outcome };
  }
  // 204, 205 and 304 carry no body, whatever upstream sent.
  let body = NULL_BODY.has(status) ? null : upstream.body;
  let outcome: Promise<Outcome>;
  const answered = { ...times, firstOutputAt: headersAt };
  if (call.readUsage && body !== null && contentType.startsWith("application/json")) {
    // A native tee: the client's half streams on; the proxy's half is read for `usage` as it
    // arrives, holding nothing but the usage itself, and keeps reading if the client leaves.
    const [forClient, forUsage] = body.tee();
    body = forClient;
    outcome = readJsonUsage(forUsage).then(
      (usage) => settle("complete", status, false, answered, usage),
      () => settle("cut", status, false, times),
    );
  } else {
    outcome = Promise.resolve(settle("complete", status, false, answered));
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
