/**
 * `npm run usage -- [--remote] [--since 7d|24h|YYYY-MM-DD] [--by client|model|day|upstream] [--persist-to DIR]`:
 * prints the usage report (the same as `GET /admin/usage`) as a table, from the local ledger that
 * `wrangler dev` keeps or, with `--remote`, the deployed one.
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ProxyError } from "../src/errors";
import {
  GROUP_BYS,
  type GroupBy,
  inlineParams,
  MAX_REPORT_DAYS,
  parseReportQuery,
  type ReportQuery,
  type ReportRow,
  usageQuery,
} from "../src/usage/report";

const ROOT = resolve(import.meta.dirname, "..");
const HOUR_MS = 3_600_000;

const USAGE = `Usage: npm run usage -- [--remote] [--since 7d|24h|YYYY-MM-DD] [--by client|model|day|upstream] [--persist-to DIR]

Prints who spent what, on which model, from the usage ledger (the D1 database bound as USAGE_DB).
  --since        the start of the period: hours or days back (24h, 7d), a UTC day (2025-06-01) or an
                 ISO datetime (default: the start of the current UTC day); the period ends now
  --by           client, model, day or upstream (default: client)
  --remote       the deployed database on Cloudflare (default: the local one that wrangler dev uses)
  --persist-to   the local state directory, as given to wrangler dev --persist-to (default: .wrangler/state)`;

/** A mistake on the command line: reported with the usage. */
class ArgumentError extends Error {}

async function main(): Promise<void> {
  const { values } = parseArguments();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.remote && values["persist-to"] !== undefined) {
    throw new ArgumentError("--persist-to is for the local database, not --remote");
  }
  const now = Date.now();
  const query = reportQuery(values.since, values.by ?? "client", now);
  const { sql, params } = usageQuery(query);
  const rows = await execute(inlineParams(sql, params), {
    remote: values.remote ?? false,
    persistTo: values["persist-to"],
  });
  process.stdout.write(render(query, rows, values.remote ? "remote" : "local"));
}

function parseArguments() {
  try {
    return parseArgs({
      options: {
        remote: { type: "boolean" },
        since: { type: "string" },
        by: { type: "string" },
        "persist-to": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new ArgumentError(error instanceof Error ? error.message : String(error));
  }
}

/** The report's query from the command line: `--since` as hours or days back, a day or a datetime. */
function reportQuery(since: string | undefined, by: string, now: number): ReportQuery {
  if (!(GROUP_BYS as readonly string[]).includes(by)) {
    throw new ArgumentError(`--by must be client, model, day or upstream (got "${by}")`);
  }
  const relative = since === undefined ? null : /^(\d+)([hd])$/.exec(since.trim());
  const from =
    relative === null
      ? since
      : new Date(now - Number(relative[1]) * HOUR_MS * (relative[2] === "d" ? 24 : 1)).toISOString();
  try {
    return parseReportQuery({ from, group_by: by as GroupBy }, now);
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    // Say it in the command line's terms: the report's own messages name its from and to parameters.
    if (error.message.startsWith("from must be a day")) {
      throw new ArgumentError(
        `--since must be hours or days back (24h, 7d), a day (YYYY-MM-DD) or an ISO datetime (got "${since}")`,
      );
    }
    if (error.message.startsWith("from must be before to"))
      throw new ArgumentError(`--since ${since} is in the future`);
    throw new ArgumentError(`--since ${since}: a report covers at most ${MAX_REPORT_DAYS} days`);
  }
}

/** Runs one statement with `wrangler d1 execute` and returns its rows. */
async function execute(sql: string, options: { remote: boolean; persistTo: string | undefined }): Promise<ReportRow[]> {
  const args = [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "d1", "execute", "USAGE_DB"];
  args.push(options.remote ? "--remote" : "--local", "--json", "--command", sql);
  if (options.persistTo !== undefined) args.push("--persist-to", resolve(options.persistTo));
  const { code, stdout, stderr } = await run(args);

  let output: unknown;
  try {
    output = JSON.parse(stdout);
  } catch {
    throw new Error(`wrangler d1 execute failed (exit code ${code}):\n${stderr.trim() || stdout.trim()}`);
  }
  if (code !== 0 || !Array.isArray(output)) {
    const text = (output as { error?: { text?: unknown } } | null)?.error?.text;
    const message = typeof text === "string" ? text : stdout.trim();
    const hint = /no such table: usage/.test(message)
      ? `\nThe ledger has no usage table yet: run \`npm run db:migrate${options.remote ? " -- --remote" : ""}\` first.`
      : "";
    throw new Error(`wrangler d1 execute failed: ${message}${hint}`);
  }
  const first = output[0] as { results?: unknown } | undefined;
  return Array.isArray(first?.results) ? (first.results as ReportRow[]) : [];
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.once("error", (error) => fail(new Error(`could not start wrangler: ${error.message}`)));
    child.once("close", (code) => done({ code: code ?? 1, stdout, stderr }));
  });
}

/** The report as an aligned table: a header naming the period and grouping, one line per group, a total. */
function render(query: ReportQuery, rows: ReportRow[], where: "local" | "remote"): string {
  const header = `Usage by ${query.groupBy}, ${query.from} to ${query.to} (${where} database)\n\n`;
  if (rows.length === 0) return `${header}No requests in this period.\n`;

  const sum = (pick: (row: ReportRow) => number) => rows.reduce((total, row) => total + pick(row), 0);
  const priced = rows.filter((row) => row.cost_usd !== null);
  const total: ReportRow = {
    key: "total",
    requests: sum((row) => row.requests),
    prompt_tokens: sum((row) => row.prompt_tokens),
    completion_tokens: sum((row) => row.completion_tokens),
    total_tokens: sum((row) => row.total_tokens),
    cost_usd: priced.length === 0 ? null : priced.reduce((cost, row) => cost + (row.cost_usd ?? 0), 0),
    incomplete: sum((row) => row.incomplete),
    cost_estimated: sum((row) => row.cost_estimated ?? 0),
  };
  const count = (n: number) => n.toLocaleString("en-US");
  const cells = (row: ReportRow) => [
    row.key,
    count(row.requests),
    count(row.prompt_tokens),
    count(row.completion_tokens),
    count(row.total_tokens),
    row.cost_usd === null ? "-" : row.cost_usd.toFixed(6),
    count(row.incomplete),
    count(row.cost_estimated ?? 0),
  ];
  const table = [
    [query.groupBy, "requests", "prompt", "completion", "total tokens", "cost USD", "incomplete", "est. price"],
    ...rows.map(cells),
    cells(total),
  ];
  const widths = table[0]?.map((_, column) => Math.max(...table.map((line) => line[column]?.length ?? 0))) ?? [];
  const line = (values: string[]) =>
    values
      .map((value, column) => (column === 0 ? value.padEnd(widths[column] ?? 0) : value.padStart(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  const rule = widths.map((width) => "-".repeat(width)).join("  ");
  const lines = [line(table[0] ?? []), rule, ...table.slice(1, -1).map(line), rule, line(table.at(-1) ?? [])];
  const note =
    priced.length < rows.length
      ? "\ncost USD -: no known price for the model (see MODEL_PRICES); the total counts known prices only.\n"
      : "";
  const estimated =
    total.cost_estimated > 0
      ? "est. price: requests priced at FALLBACK_PRICE, their model having no price of its own (add it to MODEL_PRICES).\n"
      : "";
  return `${header}${lines.join("\n")}\n${note}${estimated}`;
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof ArgumentError ? "\nRun `npm run usage -- --help` for the options.\n" : "";
  process.stderr.write(`usage: ${message}\n${hint}`);
  process.exit(1);
});
