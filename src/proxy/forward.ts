import type { Upstream, UpstreamSettings } from "../config";
import { type ErrorShape, ProxyError } from "../errors";
import { type JsonAnswer, readJsonAnswer } from "../usage/json-usage";
import type { Ending, Outcome } from "../usage/spend";
import { SseUsageReader } from "../usage/sse-usage";
import { isPassed } from "./client-headers";
import { dropKey, hasReadyKey, nextKey, readyFirst, restKey } from "./pool";
import { acceptsStreamOptions, refusesAddedField, rememberRefusesStreamOptions } from "./quirks";
import { passThroughSse } from "./sse";
import { SseFramer } from "./sse-framing";
import { upstreamHeaders, upstreamUrl } from "./upstream";
import { REGION_BLOCKED, readLimited, upstreamErrorBody } from "./upstream-errors";

/** A request body within the size limit: bytes when read into memory, a stream when passed through, null when absent. */
export type RequestBody = Uint8Array | ReadableStream<Uint8Array> | null;

/** What the route asks of upstream: a path below `/v1`, what to send there, where, and how to stream back. */
export type UpstreamCall = {
  method: string;
  /** Path below `/v1`, starting with `/`: `/chat/completions`. */
  path: string;
  /** The client's query string, `?…` or empty. */
  search: string;
  headers: Headers;
  body: RequestBody;
  /**
   * The same body again, for a second try on another key or upstream; null for a body that cannot
   * be sent twice (an upload streamed through), which is then never tried again.
   */
  replay: (() => RequestBody) | null;
  /** The upstreams that serve the request's model, in the order to try them (see `routeFor`). */
  route: readonly Upstream[];
  /** The model the request names (after aliases): what an Azure upstream picks its deployment by. */
  model: string | null;
  /** For the log line of each try. */
  requestId: string;
  /** Write a log line per try (`LOG_REQUESTS`). */
  logTries: boolean;
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

/** Which upstream answered, and after how many tries: what an outcome records of the route. */
type Tried = { upstream: string | null; tries: number; key: number | null };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([204, 205, 304]);
/** How long a key rests after a 429 that says nothing of when to come back. */
const DEFAULT_REST_MS = 10_000;

/** One try: upstream's answer, or how the try failed before there was one. */
type Try = { upstream: Response; headersAt: number } | { failure: Forwarded };

/**
 * Why a try goes on, and where first: `key`, another key of the same upstream (a refused key, 401);
 * `upstream`, the next upstream, else another key here (429, which also rests the key; 5xx,
 * unreachable, region block).
 */
type Failover = { scope: "key" | "upstream"; status: number | null; restUntil?: number; refused?: boolean };

/**
 * Sends `call` upstream and turns the answer into the client's response: status, body and useful
 * headers unchanged; SSE passed through as it arrives; redirects not followed; upstream 401 hidden
 * behind a generic 502 (OpenAI's 401 body echoes part of the key), its other errors passed on with
 * anything key-like redacted; a status that is not a final answer (1xx, over 599) a 502. No
 * response headers within `UPSTREAM_TIMEOUT_MS` gives a 504 that tells SDKs not to retry; the
 * client going away cancels upstream.
 *
 * Tries `call.route` in order, each upstream's keys in turn: before anything reached the client, a
 * connection error, 429, 401, 502, 503 or a region block moves the request to the next
 * upstream or key (429 rests the key until its `Retry-After`, 401 takes it out of the pool and tries
 * the upstream's next key),
 * at most `UPSTREAM_ATTEMPTS` tries in all, all within `UPSTREAM_TIMEOUT_MS`; a body that cannot
 * be replayed is tried once. When the proxy added `stream_options` and an upstream refuses the
 * field (400), the client's request is sent there once more without it, and the isolate stops
 * adding it there. Each try is one log line. Never throws for what upstream does: every way the
 * call can end is a `Forwarded` with its outcome.
 *
 * @example
 * const { response, error, outcome } = await forward(config.upstream, call, c.req.raw.signal);
 */
export async function forward(
  settings: UpstreamSettings,
  call: UpstreamCall,
  clientSignal: AbortSignal,
): Promise<Forwarded> {
  const what = `${call.method} /v1${call.path}`;
  if (clientSignal.aborted) return failed(clientClosed(what), "not_sent");
  const deadline = Date.now() + settings.timeoutMs;
  const { secrets } = settings;
  // Upstreams with a key ready first: one whose keys all rest is tried only when no other is left.
  const route = readyFirst(call.route);
  let at = 0;
  let tries = 0;
  let last: { result: Try; upstream: Upstream; key: number; dropUsageChunk: boolean } | null = null;
  while (tries < settings.attempts && at < route.length) {
    const upstream = route[at] as Upstream;
    const key = nextKey(upstream);
    if (key === null) {
      at++;
      continue;
    }
    const left = deadline - Date.now();
    // Stream options go to upstreams that take them; the others get the client's own request.
    const withOptions =
      call.withoutUsageOption === null || (upstream.includeStreamUsage && acceptsStreamOptions(upstream.baseUrl));
    const body =
      tries === 0 && withOptions
        ? call.body
        : withOptions
          ? (call.replay?.() ?? null)
          : (call.withoutUsageOption?.without() ?? null);
    tries++;
    const url = upstreamUrl(upstream, call.path, call.search, call.model);
    const headers = upstreamHeaders(upstream, upstream.keys[key] ?? "", call.headers);
    const startedAt = Date.now();
    let result = await send(
      what,
      { url, method: call.method, headers, body },
      Math.min(left, settings.timeoutMs),
      clientSignal,
    );
    let dropUsageChunk = call.withoutUsageOption !== null && withOptions;
    if ("upstream" in result && result.upstream.status === 400 && dropUsageChunk && call.withoutUsageOption !== null) {
      const text = await readLimited(result.upstream);
      if (refusesAddedField(text, call.withoutUsageOption.added)) {
        // Nothing the proxy adds may make a request fail that would succeed unchanged.
        dropUsageChunk = false;
        const again = call.withoutUsageOption.without();
        result = await send(
          what,
          { url, method: call.method, headers, body: again },
          Math.max(1, deadline - Date.now()),
          clientSignal,
        );
        // Remembered only when the request then succeeds: a 400 that merely echoes the words (a
        // client's own bad value) must not stop usage being read for everyone else.
        if ("upstream" in result && result.upstream.ok) rememberRefusesStreamOptions(upstream.baseUrl);
      } else {
        result = { upstream: new Response(text, result.upstream), headersAt: result.headersAt };
      }
    }
    const failover = await failoverOf(result);
    // A request answered at its first try has its request line alone (naming upstream and key);
    // one that needed more logs each try.
    if (call.logTries && (failover !== null || tries > 1)) {
      logTry(call.requestId, upstream, key, result, failover, Date.now() - startedAt);
    }
    last = { result, upstream, key, dropUsageChunk };
    if (failover === null) break;
    if (failover.refused) dropKey(upstream, key);
    if (failover.restUntil !== undefined) restKey(upstream, key, failover.restUntil);
    // Another key of the same upstream for what one key met; the next upstream for the rest (or,
    // when there is none, another key here).
    const anotherKey = hasReadyKey(upstream, key);
    const anotherUpstream = at + 1 < route.length;
    const next =
      failover.scope === "key"
        ? anotherKey
          ? at
          : anotherUpstream
            ? at + 1
            : null
        : anotherUpstream
          ? at + 1
          : anotherKey
            ? at
            : null;
    const more = next !== null && tries < settings.attempts && call.replay !== null && Date.now() < deadline;
    if (!more) break;
    at = next;
    // The answer that gave way to another try is not the client's: let it go.
    if ("upstream" in result) await result.upstream.body?.cancel().catch(() => {});
  }
  if (last === null) {
    const error = new ProxyError(502, `${what}: no upstream has a key it can use`, { code: "upstream_unreachable" });
    return failed(error, "not_sent");
  }
  const tried: Tried = { upstream: last.upstream.name, tries, key: last.key };
  const { result } = last;
  if ("failure" in result) return withTried(result.failure, tried);
  if (result.upstream.bodyUsed) {
    // A failover candidate whose body was let go, then no try was left: say what it was.
    const error = new ProxyError(502, `${what}: upstream answered ${result.upstream.status}`, {
      code: "upstream_unreachable",
    });
    return failed(error, "upstream_error", result.upstream.status);
  }
  return withTried(
    await answer(settings, call, what, { ...result, dropUsageChunk: last.dropUsageChunk, clientSignal, secrets }),
    tried,
  );
}

/** Whether a try should give way to another key or upstream, and why; reads the body of a 403 to see if it is a region block. */
async function failoverOf(result: Try): Promise<Failover | null> {
  if ("failure" in result) {
    const ending = (await result.failure.outcome).ending;
    return ending === "unreachable" ? { scope: "upstream", status: null } : null;
  }
  const { status, headers } = result.upstream;
  // A rate limit is usually the account's, shared by its keys: another upstream first, else another key.
  if (status === 429) return { scope: "upstream", status, restUntil: Date.now() + retryAfterMs(headers) };
  if (status === 401) return { scope: "key", status, refused: true };
  // Not 504: a gateway that timed out may have left the model working, as the proxy's own timeout may.
  if (status === 502 || status === 503) return { scope: "upstream", status };
  if (status === 403) {
    const text = await readLimited(result.upstream);
    // Put back for whoever reads it next: this try's answer, or nobody.
    Object.assign(result, { upstream: new Response(text, result.upstream) });
    if (text.includes(REGION_BLOCKED)) return { scope: "upstream", status };
  }
  return null;
}

/** How long upstream asked a key to wait: `retry-after-ms`, `retry-after` (seconds), or a default. */
function retryAfterMs(headers: Headers): number {
  const ms = Number(headers.get("retry-after-ms"));
  if (headers.has("retry-after-ms") && Number.isFinite(ms) && ms >= 0) return ms;
  const seconds = Number(headers.get("retry-after"));
  if (headers.has("retry-after") && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  return DEFAULT_REST_MS;
}

/**
 * One log line per try: the proxy's request id (shared by a request's tries), which upstream and key
 * (by index, never the key), what came back (with upstream's own request id), how long it took.
 */
function logTry(
  requestId: string,
  upstream: Upstream,
  key: number,
  result: Try,
  failover: Failover | null,
  ms: number,
) {
  const status = "upstream" in result ? result.upstream.status : null;
  console.log(
    JSON.stringify({
      level: failover === null ? "info" : "warn",
      msg: "upstream try",
      requestId,
      upstream: upstream.name,
      key,
      status,
      upstreamRequestId: "upstream" in result ? result.upstream.headers.get("x-request-id") : null,
      ...(failover === null ? {} : { failover: failover.scope }),
      ms,
    }),
  );
}

/** A forwarded answer whose outcome also says which upstream answered and after how many tries. */
function withTried(forwarded: Forwarded, tried: Tried): Forwarded {
  return { ...forwarded, outcome: forwarded.outcome.then((outcome) => ({ ...outcome, ...tried })) };
}

/** One request upstream, with the timeout and the client's abort; never throws. */
async function send(
  what: string,
  request: { url: string; method: string; headers: Headers; body: RequestBody },
  timeoutMs: number,
  clientSignal: AbortSignal,
): Promise<Try> {
  // A client that left meanwhile (between two tries) gets no upstream call: it would be billed for nobody.
  if (clientSignal.aborted) return { failure: failed(clientClosed(what), "client_closed") };
  const abort = new AbortController();
  const onClientAbort = () => abort.abort("client went away");
  clientSignal.addEventListener("abort", onClientAbort);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort("upstream timed out");
  }, timeoutMs);
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
      const message = `${what}: upstream sent no response within ${timeoutMs} ms`;
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
  settings: UpstreamSettings,
  call: UpstreamCall,
  what: string,
  tried: {
    upstream: Response;
    headersAt: number;
    dropUsageChunk: boolean;
    clientSignal: AbortSignal;
    secrets: readonly string[];
  },
): Promise<Forwarded> {
  const { upstream, headersAt, dropUsageChunk, clientSignal, secrets } = tried;
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
    const { body, json, regionBlocked } = await upstreamErrorBody(upstream, secrets);
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
  const body = NULL_BODY.has(status) ? null : upstream.body;
  const answered = { ...times, firstOutputAt: headersAt };
  if (call.readUsage && body !== null && contentType.startsWith("application/json")) {
    // Read for its `usage`: whole when small (handed on as bytes), else as it streams on.
    let read: JsonAnswer;
    try {
      read = await readJsonAnswer(upstream);
    } catch {
      const error = new ProxyError(502, `${what}: upstream broke off its answer`, {
        code: "upstream_interrupted",
        retryable: false,
      });
      return failed(error, "cut", status, times);
    }
    const outcome = read.usage.then(
      (usage) => settle("complete", status, false, answered, usage),
      () => settle("cut", status, false, times),
    );
    const whole = read.body instanceof Uint8Array;
    return { response: new Response(read.body, { status, headers: keptHeaders(upstream.headers, !whole) }), outcome };
  }
  const outcome = Promise.resolve(settle("complete", status, false, answered));
  return { response: new Response(body, { status, headers: keptHeaders(upstream.headers, true) }), outcome };
}

function settle(
  ending: Ending,
  upstreamStatus: number | null,
  stream: boolean,
  times: OutcomeTimes,
  usage: Outcome["usage"] = null,
  outputEvents = 0,
): Outcome {
  return { ending, upstreamStatus, stream, usage, outputEvents, upstream: null, tries: 0, key: null, ...times };
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
