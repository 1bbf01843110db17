import { ProxyError } from "../errors";
import { DAY_MS } from "../lib/time";

/** What a usage report groups by. */
export type GroupBy = "client" | "model" | "day" | "upstream";

/** A checked report query: the half-open period [`from`, `to`) as ISO datetimes, and the grouping. */
export type ReportQuery = { from: string; to: string; groupBy: GroupBy };

/** One group of a report. */
export type ReportRow = {
  /** The client name, the model (`(none)` for requests without one), the UTC day or the upstream that answered (`(none)` when none was tried). */
  key: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Null when no request of the group had a known price. */
  cost_usd: number | null;
  /** How many of the group's requests were cut or cancelled. */
  incomplete: number;
  /** How many of the group's requests were priced at `FALLBACK_PRICE`: their model needs a price. */
  cost_estimated: number;
};

/** A report as `GET /admin/usage` answers it. */
export type UsageReport = { from: string; to: string; group_by: GroupBy; rows: ReportRow[] };

/** The part of `D1Database` a report needs; structural, so the CLI can import this module without Workers types. */
export type ReportDatabase = {
  prepare(query: string): {
    bind(...values: unknown[]): { all<T = Record<string, unknown>>(): Promise<{ results: T[] }> };
  };
};

export const GROUP_BYS: readonly GroupBy[] = ["client", "model", "day", "upstream"];

/** The longest period a report covers. */
export const MAX_REPORT_DAYS = 366;

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?$/;

const KEY_COLUMNS: Record<GroupBy, string> = {
  client: "client",
  model: "COALESCE(model, '(none)')",
  day: "day",
  upstream: "COALESCE(upstream, '(none)')",
};

/**
 * Checks a report's query parameters. `from` and `to` take a UTC day (`2025-01-31`) or an ISO
 * datetime (`2025-01-31T12:00:00Z`; without a zone, UTC). A day as `to` includes that whole day.
 * Defaults: from the start of the current UTC day to `now`, grouped by client.
 *
 * @throws ProxyError 400 naming the bad parameter (`param`): an unreadable date, an unknown
 * `group_by`, `from` not before `to`, or a period longer than 366 days.
 *
 * @example
 * parseReportQuery({ from: "2025-01-01", to: "2025-01-31", group_by: "model" }, Date.now());
 * // { from: "2025-01-01T00:00:00.000Z", to: "2025-02-01T00:00:00.000Z", groupBy: "model" }
 */
export function parseReportQuery(
  query: { from?: string | undefined; to?: string | undefined; group_by?: string | undefined },
  now: number | Date,
): ReportQuery {
  const nowMs = typeof now === "number" ? now : now.getTime();
  const groupBy = present(query.group_by) ?? "client";
  if (!isGroupBy(groupBy))
    throw badParameter("group_by", `group_by must be client, model, day or upstream (got "${groupBy}")`);

  const rawFrom = present(query.from);
  const rawTo = present(query.to);
  const from = rawFrom === undefined ? Math.floor(nowMs / DAY_MS) * DAY_MS : parseTime("from", rawFrom, "start");
  const to = rawTo === undefined ? nowMs : parseTime("to", rawTo, "end");
  if (from >= to) {
    throw badParameter(
      "from",
      `from must be before to (got from ${new Date(from).toISOString()}, to ${new Date(to).toISOString()})`,
    );
  }
  if (to - from > MAX_REPORT_DAYS * DAY_MS) {
    throw badParameter("from", `from and to must be at most ${MAX_REPORT_DAYS} days apart`);
  }
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), groupBy };
}

/**
 * The report's SQL and its parameters (`?1` from, `?2` to, in milliseconds): one row per group,
 * most expensive first, then most tokens, then by key.
 *
 * @example
 * const { sql, params } = usageQuery(parseReportQuery({ group_by: "model" }, Date.now()));
 * await db.prepare(sql).bind(...params).all();
 */
export function usageQuery(query: ReportQuery): { sql: string; params: number[] } {
  const sql = `SELECT ${KEY_COLUMNS[query.groupBy]} AS key,
  COUNT(*) AS requests,
  COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
  COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
  COALESCE(SUM(COALESCE(total_tokens, prompt_tokens + completion_tokens)), 0) AS total_tokens,
  ROUND(SUM(cost_usd), 9) AS cost_usd,
  SUM(incomplete) AS incomplete,
  SUM(cost_estimated) AS cost_estimated
FROM usage
WHERE ts >= ?1 AND ts < ?2
GROUP BY key
ORDER BY cost_usd DESC, total_tokens DESC, key ASC`;
  return { sql, params: [Date.parse(query.from), Date.parse(query.to)] };
}

/**
 * Runs a report against the ledger.
 *
 * @example
 * const report = await usageReport(env.USAGE_DB, parseReportQuery(c.req.query(), Date.now()));
 * // { from, to, group_by: "client", rows: [{ key: "web", requests: 12, …, cost_usd: 0.0042, incomplete: 1 }] }
 */
export async function usageReport(db: ReportDatabase, query: ReportQuery): Promise<UsageReport> {
  const { sql, params } = usageQuery(query);
  const { results } = await db
    .prepare(sql)
    .bind(...params)
    .all<ReportRow>();
  return { from: query.from, to: query.to, group_by: query.groupBy, rows: results };
}

/**
 * The SQL text with its numbered parameters (`?1`, `?2`, …) written in, for `wrangler d1 execute
 * --command`, which takes no parameters. Accepts only finite numbers and strings of the characters
 * an ISO datetime uses, so nothing written in can change the statement.
 *
 * @example
 * inlineParams("SELECT * FROM usage WHERE ts >= ?1", [1735689600000]); // "SELECT * FROM usage WHERE ts >= 1735689600000"
 */
export function inlineParams(sql: string, params: readonly (number | string)[]): string {
  const literals = params.map((value, index) => {
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
    if (typeof value === "string" && /^[0-9A-Za-z:.+-]*$/.test(value)) return `'${value}'`;
    throw new Error(`parameter ?${index + 1} cannot be written into SQL: ${JSON.stringify(value)}`);
  });
  return sql.replace(/\?(\d+)/g, (placeholder, number: string) => {
    const literal = literals[Number(number) - 1];
    if (literal === undefined) throw new Error(`no value for parameter ${placeholder}`);
    return literal;
  });
}

function isGroupBy(value: string): value is GroupBy {
  return (GROUP_BYS as readonly string[]).includes(value);
}

function present(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === "" ? undefined : trimmed;
}

/** A day or datetime in milliseconds; a day is its start, or as `end` the start of the next day. */
function parseTime(param: "from" | "to", raw: string, day: "start" | "end"): number {
  const date = DATE.exec(raw);
  const datetime = date === null ? DATETIME.exec(raw) : null;
  const parts = date ?? datetime;
  const ms = date !== null ? Date.parse(`${raw}T00:00:00Z`) : datetime !== null ? Date.parse(withZone(raw)) : NaN;
  const [, year = "", month = "", dayOfMonth = ""] = parts ?? [];
  // Date.parse rolls 2025-02-30 over to March 2: check that the calendar day exists.
  const calendar = Number.isNaN(ms) ? null : new Date(Date.UTC(Number(year), Number(month) - 1, Number(dayOfMonth)));
  if (
    calendar === null ||
    calendar.getUTCFullYear() !== Number(year) ||
    calendar.getUTCMonth() !== Number(month) - 1 ||
    calendar.getUTCDate() !== Number(dayOfMonth)
  ) {
    throw badParameter(param, `${param} must be a day (YYYY-MM-DD) or an ISO datetime (got "${raw}")`);
  }
  return date !== null && day === "end" ? ms + DAY_MS : ms;
}

/** A datetime without a zone is UTC (Date.parse would read it as local time). */
function withZone(datetime: string): string {
  return /(?:Z|[+-]\d{2}:\d{2})$/.test(datetime) ? datetime : `${datetime}Z`;
}

function badParameter(param: string, message: string): ProxyError {
  return new ProxyError(400, message, { code: "invalid_parameter", param });
}
