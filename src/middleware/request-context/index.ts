import type { MiddlewareHandler } from "hono";
import { getConfig } from "../../config";
import type { StreamOutcome } from "../../proxy/sse";
import type { AppEnv, RequestInfo } from "../../types";

/** One JSON log line per request. Never a key, a token or message content: only these fields. */
export type RequestLog = {
  level: "info" | "error";
  msg: "request";
  requestId: string;
  method: string;
  path: string;
  /** Who called: `key:<name>`, `sub:<subject>` or `ip:<address>`; never a key or token. */
  client: string | null;
  status: number;
  upstreamStatus: number | null;
  model: string | null;
  stream: boolean;
  durationMs: number;
  ttfbMs: number | null;
  /** For streams: complete, cut (upstream broke off), stalled (upstream went silent) or cancelled (client left). */
  outcome?: StreamOutcome;
  error?: string;
};

/** A request id of the same form as OpenAI's, for responses the upstream never saw. */
export function newRequestId(): string {
  return `req_proxy_${crypto.randomUUID().replaceAll("-", "")}`;
}

/**
 * First step of the pipeline: gives the request an id and a start time, makes sure every
 * response carries `x-request-id`, and writes the request's log line once its body is done
 * (after the response, in `waitUntil`).
 *
 * @example
 * app.use(requestContext());
 */
export function requestContext(): MiddlewareHandler<AppEnv> {
  return async function requestContextMiddleware(c, next) {
    const info: RequestInfo = { startedAt: Date.now() };
    c.set("info", info);
    await next();

    const res = c.res;
    let requestId = res.headers.get("x-request-id");
    if (requestId === null) {
      requestId = newRequestId();
      res.headers.set("x-request-id", requestId);
    }

    const method = c.req.method;
    const path = c.req.path;
    const writeLog = (outcome?: StreamOutcome) => {
      const failed = outcome === "cut" || outcome === "stalled";
      const error = failed ? `upstream_${outcome === "cut" ? "interrupted" : "stalled"}` : info.error;
      const line: RequestLog = {
        level: res.status >= 500 || failed ? "error" : "info",
        msg: "request",
        requestId,
        method,
        path,
        client: c.get("client")?.id ?? null,
        status: res.status,
        upstreamStatus: info.upstreamStatus ?? null,
        model: info.model ?? null,
        stream: info.stream ?? false,
        durationMs: Date.now() - info.startedAt,
        ttfbMs: info.ttfbMs ?? null,
        ...(outcome === undefined ? {} : { outcome }),
        ...(error === undefined ? {} : { error }),
      };
      console.log(JSON.stringify(line));
    };
    if (!getConfig(c.env).logRequests) return;
    if (info.done === undefined) writeLog();
    else c.executionCtx.waitUntil(info.done.then(writeLog));
  };
}
