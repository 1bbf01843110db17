import { utcDay } from "../lib/time";
import type { Spend } from "./spend";

/** One proxied request, as the usage ledger keeps it (a row of `usage`, see migrations/). */
export type UsageRecord = {
  /** When the request started, in milliseconds since the epoch. */
  ts: number;
  /** The request's `x-request-id` (upstream's, when it sent one). */
  requestId: string;
  /** The proxy's own id of the request, unique: a record written twice is kept once. */
  recordId?: string;
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

const COLUMNS = [
  ["ts", "ts"],
  ["day", "day"],
  ["request_id", "requestId"],
  ["client", "client"],
  ["client_kind", "clientKind"],
  ["route", "route"],
  ["model", "model"],
  ["status", "status"],
  ["prompt_tokens", "promptTokens"],
  ["completion_tokens", "completionTokens"],
  ["total_tokens", "totalTokens"],
  ["cached_tokens", "cachedTokens"],
  ["reasoning_tokens", "reasoningTokens"],
  ["cost_usd", "costUsd"],
  ["duration_ms", "durationMs"],
  ["ttft_ms", "ttftMs"],
  ["incomplete", "incomplete"],
  ["basis", "basis"],
  ["cost_estimated", "costEstimated"],
  ["upstream", "upstream"],
  ["model_requested", "modelRequested"],
  ["record_id", "recordId"],
] as const;

/**
 * One statement for any number of records: they come as one JSON array (one bound parameter, well
 * within D1's limit of 100), are unpacked by SQLite's `json_each`, and a record already written
 * (the same `record_id`) is skipped, so that a batch written twice is kept once. Any other
 * constraint a record breaks fails the statement: nothing is dropped silently. (`WHERE true` is
 * SQLite's way of telling an upsert's `ON CONFLICT` from a join's.)
 */
const INSERT_MANY = `INSERT INTO usage (${COLUMNS.map(([column]) => column).join(", ")})
SELECT ${COLUMNS.map(([column]) => `json_extract(value, '$.${column}')`).join(", ")} FROM json_each(?1) WHERE true
ON CONFLICT (record_id) DO NOTHING`;

/** A record as the row it becomes: column names, booleans as 0 and 1, missing fields as null. */
function rowOf(record: UsageRecord): Record<string, unknown> {
  const values: Record<string, unknown> = { ...record, day: utcDay(record.ts) };
  const row: Record<string, unknown> = {};
  for (const [column, field] of COLUMNS) {
    const value = values[field];
    row[column] = typeof value === "boolean" ? (value ? 1 : 0) : (value ?? null);
  }
  return row;
}

/**
 * Writes records to the ledger with one statement (see `INSERT_MANY`): one record after a request,
 * or a whole queue batch. Records already written are skipped, so a retry never duplicates one.
 *
 * @throws Error naming the records when D1 refuses the write (e.g. migrations not applied), with
 * D1's error as `cause`; the caller logs it or retries.
 *
 * @example
 * ctx.waitUntil(writeUsage(env.USAGE_DB, record).catch((error) => console.error(...)));
 */
export async function writeUsage(db: D1Database, records: UsageRecord | readonly UsageRecord[]): Promise<void> {
  const list = Array.isArray(records) ? records : [records as UsageRecord];
  if (list.length === 0) return;
  try {
    await db
      .prepare(INSERT_MANY)
      .bind(JSON.stringify(list.map(rowOf)))
      .run();
  } catch (error) {
    const which = list.length === 1 ? `the record of request ${list[0]?.requestId}` : `${list.length} records`;
    throw new Error(`usage ledger: could not write ${which}: ${String(error)}`, { cause: error });
  }
}
