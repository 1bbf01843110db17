import { utcDay } from "../lib/time";
import type { Spend } from "./spend";

/** One proxied request, as the usage ledger keeps it (a row of `usage`, see migrations/). */
export type UsageRecord = {
  /** When the request started, in milliseconds since the epoch. */
  ts: number;
  requestId: string;
  /** The client's name: key name, token `sub`, or IP. */
  client: string;
  clientKind: "key" | "token" | "ip";
  /** The request path, e.g. `/v1/chat/completions` or `/`. */
  route: string;
  model: string | null;
  status: number;
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
  cachedTokens: number | null;
  reasoningTokens: number | null;
  /** Null for records written before every model had a price (the fallback one). */
  costUsd: number | null;
  /** The model had no price of its own: the cost is at the fallback price. */
  costEstimated: boolean;
  /** Where the counts come from (see `Spend`). */
  basis: Spend["basis"];
  durationMs: number;
  /** Milliseconds to the first output; null when there was none. */
  ttftMs: number | null;
  /** The counts are not upstream's own: an estimate or the reservation. */
  incomplete: boolean;
  /** The upstream that answered (see `UPSTREAMS`); null when none was tried. */
  upstream?: string | null;
  /** The model as the client named it, when an alias (`MODEL_ALIASES`) stood for `model`; else null. */
  modelRequested?: string | null;
};

const INSERT = `INSERT INTO usage (
  ts, day, request_id, client, client_kind, route, model, status,
  prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens,
  cost_usd, duration_ms, ttft_ms, incomplete, basis, cost_estimated, upstream, model_requested
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)`;

/**
 * Writes one record to the ledger with a single prepared INSERT. Meant for `ctx.waitUntil`, after
 * the response has gone.
 *
 * @throws Error naming the request when D1 refuses the write (e.g. migrations not applied), with
 * D1's error as `cause`; the caller logs it.
 *
 * @example
 * ctx.waitUntil(writeUsage(env.USAGE_DB, record).catch((error) => console.error(...)));
 */
export async function writeUsage(db: D1Database, record: UsageRecord): Promise<void> {
  try {
    await db
      .prepare(INSERT)
      .bind(
        record.ts,
        utcDay(record.ts),
        record.requestId,
        record.client,
        record.clientKind,
        record.route,
        record.model,
        record.status,
        record.promptTokens,
        record.completionTokens,
        record.totalTokens,
        record.cachedTokens,
        record.reasoningTokens,
        record.costUsd,
        record.durationMs,
        record.ttftMs,
        record.incomplete ? 1 : 0,
        record.basis,
        record.costEstimated ? 1 : 0,
        record.upstream ?? null,
        record.modelRequested ?? null,
      )
      .run();
  } catch (error) {
    throw new Error(`usage ledger: could not write the record of request ${record.requestId}: ${String(error)}`, {
      cause: error,
    });
  }
}
