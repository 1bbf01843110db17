import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "../../scripts/lib/wrangler-dev";
import { type Inspector, inspectWorker, liveHeapMiB } from "./inspector";
import { childPids, pin } from "./system";

export type Arm = {
  name: string;
  url: string;
  pid?: number;
  /** The Worker's live JavaScript heap after a full collection, in MiB, for arms started with an inspector. */
  heapMiB?: () => Promise<number>;
  /** Rows in the proxy's usage ledger (D1), for the arms that have one. */
  ledgerRows?: () => Promise<number>;
  /** The credential this arm's clients send. */
  authorization: string;
  /** Credentials to spread the non-streaming load over, one per connection (many clients). */
  authorizations?: string[];
  stop: () => Promise<void>;
};

/** The fake OpenAI upstream in its own process (deterministic replies, nothing recorded), pinned to `cpus`. */
export async function startFakeUpstream(
  cpus: string,
): Promise<{ origin: string; pid: number; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(ROOT, "node_modules/tsx/dist/cli.mjs"), join(ROOT, "tools/fake-openai/cli.ts"), "--no-record"],
    { env: { ...process.env, FAKE_OPENAI_DETERMINISTIC: "1" }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`fake upstream exited with ${code}: ${out}`)));
  });
  const pid = child.pid ?? 0;
  for (const p of [pid, ...childPids(pid, "")]) pin(p, cpus);
  return {
    origin: url,
    pid,
    stop: () =>
      new Promise((done) => {
        child.once("exit", () => done());
        child.kill("SIGTERM");
      }),
  };
}

/**
 * A Worker on workerd through Miniflare's API, without `wrangler dev`'s local proxy in front, with
 * the compatibility date, flags and vars of wrangler.jsonc plus `bindings`; its workerd pinned to `cpus`.
 */
export async function startWorker(
  name: string,
  scriptPath: string,
  bindings: Record<string, string>,
  cpus: string,
  options: { authorization?: string; bare?: boolean; inspectorPort?: number } = {},
): Promise<Arm> {
  const { workerOptions: all } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.jsonc"));
  // The bare Worker shares the runtime settings, not the proxy's Durable Objects.
  const workerOptions = options.bare ? { ...all, durableObjects: {} } : all;
  const before = new Set(childPids(process.pid, "workerd"));
  mkdirSync(join(ROOT, "bench/.build"), { recursive: true });
  const mf = new Miniflare({
    ...workerOptions,
    name,
    modules: true,
    scriptPath,
    bindings: { ...(workerOptions.bindings ?? {}), ...bindings },
    host: "127.0.0.1",
    port: 0,
    // A placeholder `request.cf` instead of fetching Cloudflare's: nothing leaves the machine.
    cf: false,
    ...(options.inspectorPort === undefined ? {} : { inspectorPort: options.inspectorPort }),
    log: new Log(LogLevel.WARN),
    // The proxy's per-request log lines are read and dropped, as a log shipper would; workerd's
    // errors are kept in bench/.build/<name>.stderr.log.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.pipe(createWriteStream(join(ROOT, `bench/.build/${name}.stderr.log`)));
    },
  });
  const url = (await mf.ready).origin;
  const pid = childPids(process.pid, "workerd").find((p) => !before.has(p));
  if (pid !== undefined) pin(pid, cpus);
  let ledgerRows: (() => Promise<number>) | undefined;
  if (!options.bare) {
    // The ledger's tables, as `npm run db:migrate` makes them: without them every batch would fail and be retried.
    const db = await mf.getD1Database("USAGE_DB");
    for (const statement of migrationStatements()) await db.prepare(statement).run();
    ledgerRows = async () =>
      (await db.prepare("SELECT COUNT(*) AS n FROM usage").first<{ n: number }>())?.n ?? Number.NaN;
  }
  let inspector: Inspector | undefined;
  const heapMiB =
    options.inspectorPort === undefined
      ? undefined
      : async () => {
          inspector ??= await inspectWorker(options.inspectorPort as number, name);
          return liveHeapMiB(inspector);
        };
  return {
    name,
    url,
    ...(pid === undefined ? {} : { pid }),
    ...(ledgerRows === undefined ? {} : { ledgerRows }),
    ...(heapMiB === undefined ? {} : { heapMiB }),
    authorization: options.authorization ?? "Bearer sk-bench",
    stop: async () => {
      inspector?.close();
      await mf.dispose();
    },
  };
}

/** The statements of migrations/*.sql, in order, comments dropped. */
function migrationStatements(): string[] {
  const dir = join(ROOT, "migrations");
  return readdirSync(dir)
    .filter((file) => file.endsWith(".sql"))
    .sort()
    .flatMap((file) =>
      readFileSync(join(dir, file), "utf8")
        .split("\n")
        .filter((line) => !line.trimStart().startsWith("--"))
        .join("\n")
        .split(";")
        .map((statement) => statement.trim())
        .filter((statement) => statement !== ""),
    );
}

/** Arm C's settings: the features that cost a storage round trip off, everything else on. */
export const REQUEST_PATH_ONLY = {
  RATE_LIMIT_RPM: "0",
  MAX_CONCURRENT_STREAMS: "0",
  RECORD_USAGE: "false",
  DAILY_SPEND_LIMIT_USD: "",
};

/** Limits that every request of arm D is counted against in a Durable Object, but that no run reaches. */
export const LIMITS_OUT_OF_REACH = {
  RATE_LIMIT_RPM: "1000000000",
  MAX_CONCURRENT_STREAMS: "100000",
  DAILY_SPEND_LIMIT_USD: "1000000",
};

/** The Worker as `wrangler deploy` would upload it (`--dry-run`), in bench/.build, with its sizes in bytes. */
export function buildBundle(): { path: string; raw: number; gzip: number } {
  const outdir = join(ROOT, "bench/.build");
  execFileSync(
    process.execPath,
    [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", outdir],
    {
      cwd: ROOT,
      stdio: "ignore",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    },
  );
  const path = join(outdir, "index.js");
  const code = readFileSync(path);
  return { path, raw: code.byteLength, gzip: gzipSync(code, { level: 9 }).byteLength };
}
