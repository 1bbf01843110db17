/**
 * `npm run bench [-- --quick] [-- --out DIR] [-- --render]`: what the proxy adds to every request, measured side
 * by side with a direct connection (A) and a bare pass-through Worker (B), for this proxy (C).
 * Everything runs on 127.0.0.1 and stops at the end. Writes results/latest.json and RESULTS.md.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { ROOT } from "../scripts/lib/wrangler-dev";
import {
  type Arm,
  buildBundle,
  LIMITS_OUT_OF_REACH,
  REQUEST_PATH_ONLY,
  startFakeUpstream,
  startWorker,
} from "./lib/arms";
import { fixedRate, median, percentile, timedRequest } from "./lib/http";
import { renderMarkdown } from "./lib/report";
import { cpuMs, pin, rssMiB } from "./lib/system";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    out: { type: "string" },
    // Writes RESULTS.md again from results/latest.json, measuring nothing.
    render: { type: "boolean", default: false },
  },
});
const QUICK = args.quick;
const ROUNDS = QUICK ? 1 : 5;
const SECONDS = QUICK ? 1 : 2;
const STREAMS_PER_ROUND = QUICK ? 3 : 10;
const MEMORY_SIZES = QUICK ? [1, 10] : [1, 50, 200];
const MEMORY_REPEATS = QUICK ? 2 : 5;
const STREAM = { ttftMs: 20, chunks: 30, gapMs: 10 };

const CHAT_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello, benchmark" }] });
const STREAM_BODY = JSON.stringify({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Stream me thirty pieces please" }],
  stream: true,
  // Asked by the client, so the proxy adds nothing and the bytes can be compared with A's.
  stream_options: { include_usage: true },
});
const JSON_TYPE = { "content-type": "application/json" };
const headersFor = (arm: Arm) => ({ ...JSON_TYPE, authorization: arm.authorization });
/** Client keys of arm F: each load connection sends its own. */
const MANY_KEYS = Array.from({ length: 50 }, (_, i) => `pk_bench_${String(i).padStart(2, "0")}_0123456789abcdef`);
/** How long the ledger is loaded before its rows are counted. */
const LEDGER_SECONDS = QUICK ? 5 : 60;
const PATH = "/v1/chat/completions";

type Figures = Record<string, number>;

async function main(): Promise<void> {
  if (args.render) {
    const outDir = args.out ?? join(ROOT, "bench");
    const results = JSON.parse(readFileSync(join(outDir, "results/latest.json"), "utf8"));
    writeFileSync(join(outDir, "RESULTS.md"), renderMarkdown(results));
    return;
  }
  const twoCores = cpus().length >= 2;
  const [loadCpus, workerCpus] = twoCores ? ["0", "1"] : ["0", "0"];
  const pinned = twoCores && pin(process.pid, loadCpus);

  const bundle = buildBundle();
  const fake = await startFakeUpstream(loadCpus);
  const upstream = { OPENAI_BASE_URL: `${fake.origin}/v1`, OPENAI_API_KEY: "sk-bench" };
  const unreachable = LIMITS_OUT_OF_REACH;
  const arms: Arm[] = [
    { name: "A", url: fake.origin, authorization: "Bearer sk-bench", stop: async () => {} },
    // B, C and D open workerd's inspector, only to read their live heaps in the memory phase.
    await startWorker("bare", join(ROOT, "bench/bare-worker.js"), { UPSTREAM: fake.origin }, workerCpus, {
      bare: true,
      inspectorPort: 9301,
    }),
    await startWorker("proxy-core", bundle.path, { ...upstream, ...REQUEST_PATH_ONLY }, workerCpus, {
      inspectorPort: 9302,
    }),
    await startWorker("proxy-default", bundle.path, { ...upstream, ...unreachable }, workerCpus, {
      inspectorPort: 9303,
    }),
    await startWorker(
      "proxy-guarded",
      bundle.path,
      {
        ...upstream,
        ...unreachable,
        PROXY_KEYS: "bench:pk_bench_0123456789abcdef",
        ALLOWED_MODELS: "gpt-4o-mini,gpt-4.1*",
        MAX_OUTPUT_TOKENS: "1024",
        DAILY_TOKEN_BUDGET: "1000000000000",
      },
      workerCpus,
      { authorization: "Bearer pk_bench_0123456789abcdef" },
    ),
    {
      ...(await startWorker(
        "proxy-default-keys",
        bundle.path,
        { ...upstream, ...unreachable, PROXY_KEYS: MANY_KEYS.map((key, i) => `c${i}:${key}`).join(",") },
        workerCpus,
        { authorization: `Bearer ${MANY_KEYS[0]}` },
      )),
      authorizations: MANY_KEYS.map((key) => `Bearer ${key}`),
    },
  ];
  const [, bare] = arms;
  /**
   * C: the request path alone; D: the default configuration (limiter, ceiling, usage ledger) for one
   * client; E: D with keys, allowlist, cap and budget; F: D for 50 client keys, one per connection.
   */
  const names = ["A", "B", "C", "D", "E", "F"] as const;
  // Ctrl-C stops every process the benchmark started, the fake upstream's included.
  const stopAll = async () => {
    for (const arm of arms) await arm.stop().catch(() => {});
    await fake.stop();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      stopAll().finally(() => process.exit(130));
    });
  }
  try {
    for (const arm of arms) await throughput(arm, 10, 1); // warm-up
    const rate = Math.max(50, Math.round(0.5 * (await throughput(bare as Arm, 10, SECONDS))));
    const rounds: Record<string, Figures[]> = { A: [], B: [], C: [], D: [], E: [], F: [] };
    const streams: Record<string, Buffer> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, arm] of arms.entries()) {
        const name = names[i] ?? "?";
        const figures = await step(`round ${round + 1} ${name}`, () => measureRound(arm, rate));
        if (round === 0) streams[name] = figures.bytes;
        rounds[name]?.push(figures.numbers);
        process.stdout.write(`round ${round + 1}/${ROUNDS} ${name} ${JSON.stringify(roundSummary(figures.numbers))}\n`);
      }
    }
    const memory: Record<string, Figures> = {};
    for (const [i, arm] of arms.entries()) {
      if (i < 1 || i > 3) continue;
      const name = names[i] ?? "?";
      memory[name] = await step(`memory ${name}`, () => measureMemory(arm));
    }
    const ledger = await step("ledger D", () => measureLedger(arms[3] as Arm, rate));

    const results = {
      date: new Date().toISOString(),
      quick: QUICK,
      machine: {
        cores: cpus().length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        cpu: cpus()[0]?.model ?? "unknown",
        node: process.version,
        workerd: execFileSync(join(ROOT, "node_modules/.bin/workerd"), ["--version"], { encoding: "utf8" }).trim(),
        pinned: pinned
          ? `load generator and fake upstream on CPU ${loadCpus}, workerd on CPU ${workerCpus}`
          : "not pinned",
      },
      method: {
        rounds: ROUNDS,
        secondsPerMeasurement: SECONDS,
        fixedRatePerSecond: rate,
        stream: STREAM,
        streamsPerRound: STREAMS_PER_ROUND,
        memorySizes: MEMORY_SIZES,
        memoryRepeats: MEMORY_REPEATS,
        ledgerSeconds: LEDGER_SECONDS,
      },
      arms: Object.fromEntries(names.map((name) => [name, summarize(rounds[name] ?? [])])) as Record<
        string,
        Record<string, { median: number; min: number; max: number }>
      >,
      memory,
      ledger,
      streamBytesIdentical: {
        B: streams.B !== undefined && streams.A !== undefined && streams.B.equals(streams.A),
        C: streams.C !== undefined && streams.A !== undefined && streams.C.equals(streams.A),
        D: streams.D !== undefined && streams.A !== undefined && streams.D.equals(streams.A),
        E: streams.E !== undefined && streams.A !== undefined && streams.E.equals(streams.A),
        bytes: streams.A?.byteLength ?? 0,
      },
      bundle: { rawBytes: bundle.raw, gzipBytes: bundle.gzip },
    };
    const outDir = args.out ?? join(ROOT, "bench");
    mkdirSync(join(outDir, "results"), { recursive: true });
    writeFileSync(join(outDir, "results/latest.json"), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(outDir, "RESULTS.md"), renderMarkdown(results));
    process.stdout.write(`\nwrote ${join(outDir, "results/latest.json")} and ${join(outDir, "RESULTS.md")}\n`);
  } finally {
    await stopAll();
  }
}

/** Runs one phase of the benchmark, saying so, and names it in its error. */
async function step<T>(what: string, run: () => Promise<T>): Promise<T> {
  process.stdout.write(`${what}…\n`);
  try {
    return await run();
  } catch (error) {
    throw new Error(`${what}: ${String(error)}`, { cause: error });
  }
}

/** Requests per second at saturation with `connections` connections (closed loop). */
async function throughput(arm: Arm, connections: number, seconds: number): Promise<number> {
  const result = await autocannon(load(arm, connections, seconds));
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${arm.name}: ${result.non2xx} non-2xx answers and ${result.errors} errors under load`);
  }
  return result.requests.total / seconds;
}

/** autocannon's options for the non-streaming load; with several client keys, each connection sends its own. */
function load(arm: Arm, connections: number, seconds: number): autocannon.Options {
  let next = 0;
  const keys = arm.authorizations;
  return {
    url: arm.url + PATH,
    method: "POST",
    headers: headersFor(arm),
    body: CHAT_BODY,
    connections,
    duration: seconds,
    ...(keys === undefined
      ? {}
      : {
          setupClient: (client: { setHeaders: (headers: Record<string, string>) => void }) => {
            client.setHeaders({ ...JSON_TYPE, authorization: keys[next++ % keys.length] ?? arm.authorization });
          },
        }),
  };
}

/**
 * Loads the default configuration at `rate` requests per second for `LEDGER_SECONDS`, then counts
 * the ledger's new rows once they stop coming (the queue delivers in batches): every request served
 * must have exactly one.
 */
async function measureLedger(
  arm: Arm,
  rate: number,
): Promise<{ served: number; errors: number; failures: Record<string, number>; rows: number }> {
  const rows = arm.ledgerRows;
  if (rows === undefined) throw new Error(`${arm.name} has no ledger`);
  const before = await settledRows(rows);
  const { latencies, errors, failures } = await fixedRate(
    arm.url + PATH,
    { method: "POST", headers: headersFor(arm), body: CHAT_BODY },
    rate,
    LEDGER_SECONDS * 1000,
  );
  // A request that failed may still have been served and recorded (the client gave up first).
  const after = await settledRows(rows, before + latencies.length + errors);
  return { served: latencies.length, errors, failures, rows: after - before };
}

/** The ledger's row count once it reaches `expected`, or has not moved for 10 s (polled every 500 ms). */
async function settledRows(rows: () => Promise<number>, expected = Number.NaN): Promise<number> {
  let count = await rows();
  let still = 0;
  while (count !== expected && still < 20) {
    await new Promise((next) => setTimeout(next, 500));
    const now = await rows();
    still = now === count ? still + 1 : 0;
    count = now;
  }
  return count;
}

async function measureRound(arm: Arm, rate: number): Promise<{ numbers: Figures; bytes: Buffer }> {
  const rps10 = await throughput(arm, 10, SECONDS);
  const cpuBefore = arm.pid === undefined ? Number.NaN : cpuMs(arm.pid);
  const started = Date.now();
  const result = await autocannon(load(arm, 50, SECONDS));
  const rps50 = result.requests.total / ((Date.now() - started) / 1000);
  const cpuPerRequest = arm.pid === undefined ? Number.NaN : (cpuMs(arm.pid) - cpuBefore) / result.requests.total;

  const { latencies, errors, failures } = await fixedRate(
    arm.url + PATH,
    { method: "POST", headers: headersFor(arm), body: CHAT_BODY },
    rate,
    SECONDS * 1000,
  );
  if (errors > 0)
    throw new Error(`${arm.name}: ${errors} errors at a fixed rate of ${rate}/s: ${JSON.stringify(failures)}`);

  const stream = await measureStreams(arm);
  return {
    numbers: {
      rps10,
      rps50,
      cpuMsPerRequest: cpuPerRequest,
      latencyP50: percentile(latencies, 50),
      latencyP99: percentile(latencies, 99),
      ...stream.numbers,
    },
    bytes: stream.bytes,
  };
}

/** Streams on a timer upstream: time to first byte and first token, and how late each chunk arrives against the timer. */
async function measureStreams(arm: Arm): Promise<{ numbers: Figures; bytes: Buffer }> {
  const headers = {
    ...headersFor(arm),
    "x-fake-ttft-ms": String(STREAM.ttftMs),
    "x-fake-chunks": String(STREAM.chunks),
    "x-fake-chunk-gap-ms": String(STREAM.gapMs),
  };
  const runs = await Promise.all(
    Array.from({ length: STREAMS_PER_ROUND }, () =>
      timedRequest(arm.url + PATH, { method: "POST", headers, body: STREAM_BODY }, true),
    ),
  );
  const ttfb: number[] = [];
  const ttft: number[] = [];
  const lateness: number[] = [];
  for (const run of runs) {
    if (run.status !== 200) throw new Error(`${arm.name}: stream answered ${run.status}`);
    ttfb.push(run.headersMs);
    const events = eventTimes(run.chunks);
    const firstContent = events.find((e) => e.content);
    if (firstContent) ttft.push(firstContent.at);
    const content = events.filter((e) => e.content);
    for (let k = 1; k < content.length; k++) {
      lateness.push((content[k]?.at ?? 0) - (content[k - 1]?.at ?? 0) - STREAM.gapMs);
    }
  }
  return {
    numbers: {
      ttfbMs: median(ttfb),
      ttftMs: median(ttft),
      chunkGapP50: percentile(lateness, 50),
      chunkGapP99: percentile(lateness, 99),
    },
    bytes: Buffer.concat(runs[0]?.chunks.map((c) => c.bytes) ?? []),
  };
}

/** When each SSE event was complete on the client, and whether it carried content. */
function eventTimes(chunks: { at: number; bytes: Buffer }[]): { at: number; content: boolean }[] {
  const events: { at: number; content: boolean }[] = [];
  let pending = "";
  for (const chunk of chunks) {
    pending += chunk.bytes.toString("utf8");
    const parts = pending.split("\n\n");
    pending = parts.pop() ?? "";
    for (const part of parts) events.push({ at: chunk.at, content: /"content":"[^"]/.test(part) });
  }
  return events;
}

/** workerd's resident memory with N long streams in flight, and idle after each repeat. */
async function measureMemory(arm: Arm): Promise<Figures> {
  const pid = arm.pid;
  if (pid === undefined) return {};
  const headers = { ...headersFor(arm), "x-fake-chunks": "100", "x-fake-chunk-gap-ms": "20" };
  const figures: Figures = { idleStartMiB: rssMiB(pid) };
  const peaks: Record<number, number[]> = {};
  const heaps: Record<number, number[]> = {};
  const idle: number[] = [];
  const idleHeap: number[] = [];
  for (let repeat = 0; repeat < MEMORY_REPEATS; repeat++) {
    for (const size of MEMORY_SIZES) {
      const { peak } = await peakRssWhile(pid, 100, async () => {
        const streams = Promise.all(
          Array.from({ length: size }, () =>
            timedRequest(arm.url + PATH, { method: "POST", headers, body: STREAM_BODY }),
          ),
        );
        // Halfway through the streams (2 s long), what they hold alive.
        await new Promise((next) => setTimeout(next, 1_000));
        if (arm.heapMiB !== undefined) heaps[size] = [...(heaps[size] ?? []), await arm.heapMiB()];
        return streams;
      });
      peaks[size] = [...(peaks[size] ?? []), peak];
    }
    idle.push(await settledRssMiB(pid));
    if (arm.heapMiB !== undefined) idleHeap.push(await arm.heapMiB());
  }
  for (const size of MEMORY_SIZES) figures[`streams${size}MiB`] = median(peaks[size] ?? []);
  const first = MEMORY_SIZES[0] ?? 1;
  const last = MEMORY_SIZES.at(-1) ?? first;
  figures.perStreamKiB =
    (((figures[`streams${last}MiB`] ?? 0) - (figures[`streams${first}MiB`] ?? 0)) * 1024) / (last - first);
  figures.idleFirstMiB = idle[0] ?? Number.NaN;
  figures.idleLastMiB = idle.at(-1) ?? Number.NaN;
  figures.growthMiB = figures.idleLastMiB - figures.idleFirstMiB;
  figures.idleSpreadMiB = Math.max(...idle) - Math.min(...idle);
  /** Each repeat's cost of one more stream, in KiB, from what `byStreams` measured with the fewest and the most. */
  const perStreamOf = (byStreams: Record<number, number[]>) =>
    Array.from({ length: MEMORY_REPEATS }, (_, i) => {
      const [low, high] = [byStreams[first]?.[i] ?? 0, byStreams[last]?.[i] ?? 0];
      return ((high - low) * 1024) / (last - first);
    });
  const perStream = perStreamOf(peaks);
  figures.perStreamMinKiB = Math.min(...perStream);
  figures.perStreamMaxKiB = Math.max(...perStream);
  if (idleHeap.length > 0) {
    // The live heap (after a full collection): the figures a leak or per-stream buffering shows in,
    // without the RSS's noise.
    figures.heapIdleFirstMiB = idleHeap[0] ?? Number.NaN;
    figures.heapIdleLastMiB = idleHeap.at(-1) ?? Number.NaN;
    figures.heapGrowthMiB = figures.heapIdleLastMiB - figures.heapIdleFirstMiB;
    figures.heapIdleSpreadMiB = Math.max(...idleHeap) - Math.min(...idleHeap);
    const heapPerStream = perStreamOf(heaps);
    figures.heapPerStreamKiB = median(heapPerStream);
    figures.heapPerStreamMinKiB = Math.min(...heapPerStream);
    figures.heapPerStreamMaxKiB = Math.max(...heapPerStream);
  }
  figures.bigRequestMiB = await measureBigRequest(arm, pid);
  return figures;
}

/** The highest resident memory of `pid` while `work` runs, sampled every `everyMs` and once at its end. */
async function peakRssWhile<T>(
  pid: number,
  everyMs: number,
  work: () => Promise<T>,
): Promise<{ peak: number; result: T }> {
  let peak = 0;
  const sample = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, everyMs);
  try {
    const result = await work();
    return { peak: Math.max(peak, rssMiB(pid)), result };
  } finally {
    clearInterval(sample);
  }
}

/**
 * workerd's resident memory once it has stopped moving after a load: sampled every 200 ms until three
 * samples in a row lie within 0.25 MiB (or 10 s have passed), so that memory still being given back is
 * not taken for growth.
 */
async function settledRssMiB(pid: number): Promise<number> {
  const samples: number[] = [rssMiB(pid)];
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    await new Promise((next) => setTimeout(next, 200));
    samples.push(rssMiB(pid));
    const recent = samples.slice(-3);
    if (recent.length === 3 && Math.max(...recent) - Math.min(...recent) <= 0.25) break;
  }
  return samples.at(-1) ?? Number.NaN;
}

/** A chat request of about 50 MB: one base64 image, as a vision request with a large photo sends it. */
const BIG_BODY = JSON.stringify({
  model: "gpt-4o-mini",
  messages: [
    {
      role: "user",
      content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${"A".repeat(50_000_000)}` } }],
    },
  ],
});

/**
 * How far workerd's resident memory rises above idle while one 50 MB JSON request passes through
 * (median of the repeats), sampled every 10 ms: what such a request costs an isolate, which has
 * 128 MB on Cloudflare.
 */
async function measureBigRequest(arm: Arm, pid: number): Promise<number> {
  const rises: number[] = [];
  for (let repeat = 0; repeat < MEMORY_REPEATS; repeat++) {
    const idle = rssMiB(pid);
    const { peak, result: status } = await peakRssWhile(pid, 10, async () => {
      const response = await fetch(arm.url + PATH, { method: "POST", headers: headersFor(arm), body: BIG_BODY });
      await response.arrayBuffer();
      return response.status;
    });
    if (status !== 200) throw new Error(`${arm.name}: a 50 MB request got ${status}`);
    rises.push(Math.max(peak, idle) - idle);
  }
  return median(rises);
}

function summarize(rounds: Figures[]): Record<string, { median: number; min: number; max: number }> {
  const keys = Object.keys(rounds[0] ?? {});
  return Object.fromEntries(
    keys.map((key) => {
      const values = rounds.map((r) => r[key] ?? Number.NaN).filter((v) => !Number.isNaN(v));
      return [key, { median: median(values), min: Math.min(...values), max: Math.max(...values) }];
    }),
  );
}

function roundSummary(f: Figures): Figures {
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, Math.round(v * 100) / 100]));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
