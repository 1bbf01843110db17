import type { Upstream, UpstreamSettings } from "../config";
import { ProxyError } from "../errors";
import { isRecord } from "../lib/json";
import type { Outcome } from "../usage/spend";
import { addUsage, readUsage, type Usage } from "../usage/usage";
import type { Forwarded } from "./forward";
import { nextKey } from "./pool";
import { upstreamHeaders, upstreamUrl } from "./upstream";
import { upstreamErrorBody } from "./upstream-errors";

/** The subprotocol of OpenAI's Realtime API; the only one the proxy selects. */
const REALTIME = "realtime";
/** The subprotocol through which a browser passes its credential (OpenAI's browser flow). */
const CREDENTIAL = "openai-insecure-api-key.";
/** The subprotocol through which a browser asks for the beta Realtime API, which the `OpenAI-Beta` header asks for elsewhere. */
const BETA = "openai-beta.realtime-v1";

/** How a budget ran out, as the session's close tells the client (1008: policy violation). */
export const BUDGET_CLOSE = { code: 1008, reason: "the daily token budget cannot cover another answer" } as const;

/** What the route gives the relay: where to, the client's headers, and a say over each spend. */
export type WebSocketCall = {
  /** Path below `/v1`, starting with `/`: `/realtime`. */
  path: string;
  /** The upstreams that serve the session's model, in order: the session goes to the first with a key. */
  route: readonly Upstream[];
  /** The session's model (after aliases). */
  model: string | null;
  search: string;
  headers: Headers;
  /**
   * Called with the session's usage so far after each answer that reports it; false ends the
   * session (the budget is spent).
   */
  onUsage: (total: Usage) => Promise<boolean>;
};

/**
 * The subprotocols a client offered (`Sec-WebSocket-Protocol`), as a list.
 *
 * @example
 * offeredProtocols(new Headers({ "sec-websocket-protocol": "realtime, openai-insecure-api-key.pk_1" })); // ["realtime", "openai-insecure-api-key.pk_1"]
 */
export function offeredProtocols(headers: Headers): string[] {
  return (headers.get("sec-websocket-protocol") ?? "")
    .split(",")
    .map((token) => token.trim())
    .filter((token) => token !== "");
}

/**
 * The credential a browser passes as the `openai-insecure-api-key.<credential>` subprotocol (the
 * only way a browser's WebSocket can carry one), or null.
 */
export function protocolCredential(headers: Headers): string | null {
  const offered = offeredProtocols(headers).find((token) => token.startsWith(CREDENTIAL));
  return offered === undefined ? null : offered.slice(CREDENTIAL.length);
}

/** Whether a request asks to become a WebSocket. */
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/**
 * Relays a client's WebSocket (OpenAI's Realtime API) to upstream with the operator's key, message
 * by message, both ways, until either side closes. The client's credential, in a header or a
 * subprotocol, never goes upstream, nor do the organization and project subprotocols (the
 * operator's own are sent); the `realtime` subprotocol is kept, `openai-beta.realtime-v1` becomes
 * the `OpenAI-Beta` header it stands for. Every server event is passed on unchanged; those
 * that report `usage` (`response.done`, input transcriptions) are added up and offered to `onUsage`,
 * and a refusal closes both sides with `BUDGET_CLOSE`. The outcome settles when the session ends,
 * with the session's usage.
 *
 * @example
 * return respond(c, await relayWebSocket(config.upstream, { path: "/realtime", search, headers, onUsage }));
 */
export async function relayWebSocket(settings: UpstreamSettings, call: WebSocketCall): Promise<Forwarded> {
  const what = `GET /v1${call.path} (WebSocket)`;
  let target: Upstream | undefined;
  let key: number | null = null;
  for (const candidate of call.route) {
    key = nextKey(candidate);
    if (key !== null) {
      target = candidate;
      break;
    }
  }
  if (target === undefined || key === null) {
    return refused(
      new ProxyError(502, `${what}: no upstream has a key it can use`, { code: "upstream_unreachable" }),
      null,
    );
  }
  const url = upstreamUrl(target, call.path, call.search, call.model);
  const headers = upstreamHeaders(target, target.keys[key] ?? "", call.headers);
  const { secrets } = settings;
  const offered = offeredProtocols(call.headers);
  headers.set("upgrade", "websocket");
  if (offered.includes(REALTIME)) headers.set("sec-websocket-protocol", REALTIME);
  if (offered.includes(BETA)) headers.set("openai-beta", "realtime=v1");

  // The timeout bounds the handshake only: a signal still armed once the socket is open would end the session.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort("upstream timed out"), settings.timeoutMs);
  let upstream: Response;
  try {
    upstream = await fetch(url, { headers, redirect: "manual", signal: abort.signal });
  } catch (cause) {
    if (abort.signal.aborted) {
      const message = `${what}: upstream did not accept the WebSocket within ${settings.timeoutMs} ms`;
      return refused(new ProxyError(504, message, { code: "upstream_timeout", retryable: false, cause }), null);
    }
    const error = new ProxyError(502, `${what}: upstream is unreachable`, { code: "upstream_unreachable", cause });
    return refused(error, null);
  } finally {
    clearTimeout(timer);
  }
  const socket = upstream.webSocket;
  if (upstream.status !== 101 || socket === null) {
    if (upstream.status === 401) {
      await upstream.body?.cancel().catch(() => {});
      const message = `${what}: upstream refused the proxy's credentials; the operator should check them`;
      return refused(new ProxyError(502, message, { code: "upstream_auth_failed", retryable: false }), 401);
    }
    if (upstream.status >= 400 && upstream.status <= 599) {
      const { body } = await upstreamErrorBody(upstream, secrets);
      const response = new Response(body, { status: upstream.status, headers: { "content-type": "application/json" } });
      return { response, outcome: Promise.resolve(ended("upstream_error", upstream.status, null, 0, null)) };
    }
    await upstream.body?.cancel().catch(() => {});
    const message = `${what}: upstream answered ${upstream.status} instead of accepting the WebSocket`;
    return refused(new ProxyError(502, message, { code: "upstream_bad_response" }), upstream.status);
  }

  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  for (const ws of [socket, server]) {
    ws.binaryType = "arraybuffer";
    ws.accept({ allowHalfOpen: true });
  }
  const headersAt = Date.now();
  let total: Usage | null = null;
  let outputEvents = 0;
  let firstOutputAt: number | null = null;
  let finished = false;
  let resolveOutcome: (outcome: Outcome) => void = () => {};
  const outcome = new Promise<Outcome>((resolve) => {
    resolveOutcome = resolve;
  });
  const finish = (ending: Outcome["ending"]) => {
    if (finished) return;
    finished = true;
    resolveOutcome({ ...ended(ending, 101, total, outputEvents, { headersAt, firstOutputAt }), upstream: target.name });
  };
  const closeBoth = (code: number, reason: string) => {
    for (const ws of [socket, server]) {
      try {
        ws.close(code, reason);
      } catch {
        // already closed
      }
    }
  };

  server.addEventListener("message", (event) => {
    try {
      socket.send(event.data as string | ArrayBuffer);
    } catch {
      closeBoth(1011, "upstream connection failed");
      finish("cut");
    }
  });
  socket.addEventListener("message", (event) => {
    const data = event.data as string | ArrayBuffer;
    try {
      server.send(data);
    } catch {
      // The client is gone; its close event ends the session.
    }
    if (typeof data !== "string") return;
    if (firstOutputAt === null && data.includes(".delta")) firstOutputAt = Date.now();
    if (data.includes(".delta")) outputEvents++;
    const usage = usageOf(data);
    if (usage === null) return;
    total = total === null ? usage : addUsage(total, usage);
    const spent = total;
    void call.onUsage(spent).then(
      (allowed) => {
        if (allowed || finished) return;
        closeBoth(BUDGET_CLOSE.code, BUDGET_CLOSE.reason);
        finish("complete");
      },
      () => {},
    );
  });
  server.addEventListener("close", (event) => {
    closeBoth(closable(event.code), event.reason);
    finish("cancelled");
  });
  socket.addEventListener("close", (event) => {
    closeBoth(closable(event.code), event.reason);
    finish(event.code === 1000 ? "complete" : "cut");
  });
  for (const ws of [socket, server]) {
    ws.addEventListener("error", () => {
      closeBoth(1011, "connection failed");
      finish("cut");
    });
  }

  const responseHeaders = new Headers();
  const selected = upstream.headers.get("sec-websocket-protocol");
  if (selected !== null && offered.includes(selected)) responseHeaders.set("sec-websocket-protocol", selected);
  else if (offered.includes(REALTIME)) responseHeaders.set("sec-websocket-protocol", REALTIME);
  return { response: new Response(null, { status: 101, webSocket: client, headers: responseHeaders }), outcome };
}

/** The usage a Realtime server event reports: `response.done`'s `response.usage`, or a top-level `usage`. */
function usageOf(data: string): Usage | null {
  if (!data.includes('"usage"')) return null;
  let event: unknown;
  try {
    event = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isRecord(event)) return null;
  if (isRecord(event.response)) return readUsage(event.response.usage);
  return readUsage(event.usage);
}

/** A close code one may send on: the ones that only report (1005 none, 1006 abnormal, 1015 TLS) become 1000 or 1011. */
function closable(code: number): number {
  if (code === 1005) return 1000;
  if (code === 1006 || code === 1015 || code < 1000 || code > 4999 || code === 1004) return 1011;
  return code;
}

function ended(
  ending: Outcome["ending"],
  upstreamStatus: number | null,
  usage: Usage | null,
  outputEvents: number,
  times: { headersAt: number | null; firstOutputAt: number | null } | null,
): Outcome {
  return {
    ending,
    upstreamStatus,
    stream: true,
    usage,
    outputEvents,
    headersAt: times?.headersAt ?? null,
    firstOutputAt: times?.firstOutputAt ?? null,
    upstream: null,
    tries: 1,
    key: null,
  };
}

function refused(error: ProxyError, status: number | null): Forwarded {
  const ending = status === null ? "unreachable" : "upstream_error";
  return { error, outcome: Promise.resolve(ended(ending, status, null, 0, null)) };
}
