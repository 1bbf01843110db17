import type { MiddlewareHandler } from "hono";
import { getConfig } from "../../config";
import type { StreamOutcome } from "../../proxy/sse";
import type { Accounting, AppEnv, RequestInfo } from "../../types";
import { writeUsage } from "../../usage/ledger";
import { costUsd } from "../../usage/prices";

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
  ttftMs: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  cachedTokens: number | null;
  reasoningTokens: number | null;
  /** Estimated from the price table; null for models without a price. */
  costUsd: number | null;
  /** A stream that ended before upstream's usage arrived: its tokens are not known exactly. */
  incomplete: boolean;
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
    const client = c.get("client");
    const config = getConfig(c.env);
    const finish = (outcome: StreamOutcome | undefined, accounting: Accounting | null | undefined) => {
      const failed = outcome === "cut" || outcome === "stalled";
      const error = failed ? `upstream_${outcome === "cut" ? "interrupted" : "stalled"}` : info.error;
      const usage = accounting?.usage ?? null;
      const model = info.model ?? null;
      const cost = usage !== null && model !== null ? costUsd(model, usage, config.prices) : null;
      const durationMs = Date.now() - info.startedAt;
      if (config.logRequests) {
        const line: RequestLog = {
          level: res.status >= 500 || failed ? "error" : "info",
          msg: "request",
          requestId,
          method,
          path,
          client: client?.id ?? null,
          status: res.status,
          upstreamStatus: info.upstreamStatus ?? null,
          model,
          stream: info.stream ?? false,
          durationMs,
          ttfbMs: info.ttfbMs ?? null,
          ttftMs: accounting?.ttftMs ?? null,
          promptTokens: usage?.promptTokens ?? null,
          completionTokens: usage?.completionTokens ?? null,
          cachedTokens: usage?.cachedTokens ?? null,
          reasoningTokens: usage?.reasoningTokens ?? null,
          costUsd: cost,
          incomplete: accounting?.incomplete ?? false,
          ...(outcome === undefined ? {} : { outcome }),
          ...(error === undefined ? {} : { error }),
        };
        console.log(JSON.stringify(line));
      }
      if (client === undefined || !config.recordUsage) return;
      return writeUsage(c.env.USAGE_DB, {
        ts: info.startedAt,
        requestId,
        client: client.name,
        clientKind: client.kind,
        route: path,
        model,
        status: res.status,
        promptTokens: usage?.promptTokens ?? null,
        completionTokens: usage?.completionTokens ?? null,
        totalTokens: usage?.totalTokens ?? accounting?.tokens ?? null,
        cachedTokens: usage?.cachedTokens ?? null,
        reasoningTokens: usage?.reasoningTokens ?? null,
        costUsd: cost,
        durationMs,
        ttftMs: accounting?.ttftMs ?? null,
        incomplete: accounting?.incomplete ?? false,
      }).catch((error: unknown) => {
        console.error(
          JSON.stringify({ level: "error", msg: "usage ledger write failed", requestId, error: String(error) }),
        );
      });
    };
    if (info.done === undefined && info.accounting === undefined && client === undefined) {
      finish(undefined, undefined);
      return;
    }
    // After the response: the stream's end, its usage, then the log line and the ledger record.
    c.executionCtx.waitUntil(
      Promise.all([info.done, info.accounting]).then(([outcome, accounting]) => finish(outcome, accounting)),
    );
  };
}
