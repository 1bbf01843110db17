import type { MiddlewareHandler } from "hono";
import { getConfig } from "../../config";
import type { AppEnv } from "../../env";
import { asProxyError } from "../../errors";
import { recordUsage } from "../../usage/ledger-queue";
import { NO_RESERVATION, NOT_SENT, type Outcome, type Spend, type SpendContext, spendOf } from "../../usage/spend";
import { maybe } from "../vars";

declare module "hono" {
  interface ContextVariableMap {
    /** How the request ended and what it used, once its answer is over: handed over by the route that forwarded it. */
    outcome: Promise<Outcome>;
  }
}

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
  /** The model as the client named it, when an alias stood for `model`. */
  modelRequested?: string;
  /** The upstream that answered, and how many tries it took across keys and upstreams. */
  upstream: string | null;
  tries: number;
  /** Which of the upstream's keys answered, by index (never the key itself). */
  key: number | null;
  stream: boolean;
  durationMs: number;
  ttfbMs: number | null;
  ttftMs: number | null;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  /** In US dollars, from the price table (or `FALLBACK_PRICE` for a model without a price). */
  costUsd: number;
  /** The model has no price: the cost is at `FALLBACK_PRICE`. */
  costEstimated: boolean;
  /** Where the counts come from: upstream's report, an estimate, the reservation, or nothing spent. */
  basis: Spend["basis"];
  /** The counts are not upstream's own. */
  incomplete: boolean;
  /** How the request ended (see `Ending`). */
  outcome: Outcome["ending"];
  error?: string;
};

/**
 * Records every request, after its response, in one place: awaits the request's outcome (a
 * request the route never forwarded has one too: nothing sent), works out once what it spent
 * (`spendOf`), settles its admission at that, and writes the log line and the ledger record, all
 * from that one value. Runs right after the request id, so it sees every request, refusals included.
 *
 * @example
 * app.use(requestId());
 * app.use(accounting());
 */
export function accounting(): MiddlewareHandler<AppEnv> {
  return async function accountingMiddleware(c, next) {
    const startedAt = Date.now();
    await next();

    const config = getConfig(c.env);
    const client = maybe(c, "client");
    const outgoing = maybe(c, "outgoing");
    const admission = maybe(c, "admission");
    const outcome = maybe(c, "outcome") ?? Promise.resolve(NOT_SENT);
    const status = c.res.status;
    const requestId = c.res.headers.get("x-request-id") ?? c.get("requestId");
    const { method } = c.req;
    const path = c.req.path;
    const failure = c.error === undefined ? undefined : asProxyError(c.error);
    const error = failure === undefined ? undefined : (failure.code ?? failure.type);
    // The name the client used, when an alias stood for the model.
    const requested = outgoing?.modelRequested ?? null;
    const modelRequested = requested !== null && requested !== outgoing?.model ? requested : null;
    const context: SpendContext = {
      model: outgoing?.model ?? null,
      billing: outgoing?.billing ?? "free",
      reservation: outgoing?.reservation ?? NO_RESERVATION,
      unseenOutput: outgoing?.unseenOutput ?? false,
    };

    const record = async () => {
      const ended = await outcome;
      const spend = spendOf(ended, context, config.usage);
      if (spend.costEstimated && context.model !== null) warnUnpriced(context.model);
      // Settled first, awaited last: the ceiling's slice may wait for its expiry before it is returned.
      const finished = admission?.finish({ tokens: spend.tokens, usd: spend.costUsd });
      const durationMs = Date.now() - startedAt;
      const since = (at: number | null) => (at === null ? null : at - startedAt);
      const failed = ended.ending === "cut" || ended.ending === "stalled";
      const { usage } = spend;
      if (config.usage.log) {
        const line: RequestLog = {
          level: status >= 500 || failed ? "error" : "info",
          msg: "request",
          requestId,
          method,
          path,
          client: client?.id ?? null,
          status,
          upstreamStatus: ended.upstreamStatus,
          model: context.model,
          ...(modelRequested !== null ? { modelRequested } : {}),
          upstream: ended.upstream,
          tries: ended.tries,
          key: ended.key,
          stream: ended.stream,
          durationMs,
          ttfbMs: since(ended.headersAt),
          ttftMs: since(ended.firstOutputAt),
          promptTokens: usage.promptTokens,
          completionTokens: usage.completionTokens,
          cachedTokens: usage.cachedTokens,
          reasoningTokens: usage.reasoningTokens,
          costUsd: spend.costUsd,
          costEstimated: spend.costEstimated,
          basis: spend.basis,
          incomplete: spend.incomplete,
          outcome: ended.ending,
          ...(failed ? { error: ended.ending === "cut" ? "upstream_interrupted" : "upstream_stalled" } : {}),
          ...(!failed && error !== undefined ? { error } : {}),
        };
        console.log(JSON.stringify(line));
      }
      if (client === undefined || !config.usage.record) return finished;
      await recordUsage(c.env, {
        ts: startedAt,
        requestId,
        recordId: c.get("requestId"),
        client: client.name,
        clientKind: client.kind,
        route: path,
        model: context.model,
        status,
        promptTokens: usage.promptTokens,
        completionTokens: usage.completionTokens,
        totalTokens: usage.totalTokens,
        cachedTokens: usage.cachedTokens,
        reasoningTokens: usage.reasoningTokens,
        costUsd: spend.costUsd,
        costEstimated: spend.costEstimated,
        basis: spend.basis,
        durationMs,
        ttftMs: since(ended.firstOutputAt),
        incomplete: spend.incomplete,
        upstream: ended.upstream,
        modelRequested,
      }).catch((cause: unknown) => {
        console.error(
          JSON.stringify({ level: "error", msg: "usage ledger write failed", requestId, error: String(cause) }),
        );
      });
      await finished;
    };
    c.executionCtx.waitUntil(record());
    // A request that outlasts the ceiling's slice (a long stream, a Realtime session) keeps it alive.
    if (admission !== undefined) c.executionCtx.waitUntil(admission.keepAlive(outcome));
  };
}

/** Models this isolate has already warned about: one warning each, not one a request. */
const warned = new Set<string>();

/** Says once, in the log, that a model needs a price: until it has one it is charged at `FALLBACK_PRICE`. */
function warnUnpriced(model: string): void {
  if (warned.has(model)) return;
  warned.add(model);
  console.warn(
    JSON.stringify({
      level: "warn",
      msg: "model has no price: charged at FALLBACK_PRICE; add it to MODEL_PRICES",
      model,
    }),
  );
}
