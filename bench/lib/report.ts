type Stat = { median: number; min: number; max: number };
type Results = {
  date: string;
  quick: boolean;
  machine: Record<string, string | number>;
  method: {
    rounds: number;
    secondsPerMeasurement: number;
    fixedRatePerSecond: number;
    stream: Record<string, number>;
    streamsPerRound: number;
    memorySizes: number[];
    memoryRepeats: number;
    ledgerSeconds?: number;
  };
  arms: Record<string, Record<string, Stat>>;
  memory: Record<string, Record<string, number>>;
  /** D loaded for `ledgerSeconds`: requests served (and failed), and the ledger rows they left. */
  ledger?: { served: number; errors: number; failures?: Record<string, number>; rows: number };
  streamBytesIdentical: { B: boolean; C: boolean; D: boolean; E: boolean; bytes: number };
  bundle: { rawBytes: number; gzipBytes: number };
};

const FIGURES: [key: string, label: string, unit: string][] = [
  ["rps10", "Non-streaming throughput, 10 connections", "req/s"],
  ["rps50", "Non-streaming throughput, 50 connections", "req/s"],
  ["latencyP50", "Latency p50 at a fixed rate", "ms"],
  ["latencyP99", "Latency p99 at a fixed rate", "ms"],
  ["ttfbMs", "Stream: time to first byte", "ms"],
  ["ttftMs", "Stream: time to first token", "ms"],
  ["chunkGapP50", "Stream: chunk lateness vs upstream's timer, p50", "ms"],
  ["chunkGapP99", "Stream: chunk lateness vs upstream's timer, p99", "ms"],
  ["cpuMsPerRequest", "workerd CPU per request (50 connections)", "ms"],
];

// A figure that was not measured is NaN, or null once written to JSON (--render reads it back).
const fmt = (n: number | null | undefined, digits = 2): string =>
  typeof n !== "number" || Number.isNaN(n) ? "–" : Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits);
const cell = (s: Stat | undefined): string =>
  s === undefined || typeof s.median !== "number" || Number.isNaN(s.median)
    ? "–"
    : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
const pass = (ok: boolean): string => (ok ? "✅ met" : "❌ missed");

/** RESULTS.md: the figures of one run against the targets, and how they were taken. */
export function renderMarkdown(r: Results): string {
  const { A = {}, B = {}, C = {}, D = {}, E = {}, F = {} } = r.arms;
  const m = (arm: Record<string, Stat>, key: string) => arm[key]?.median ?? Number.NaN;
  const rows = FIGURES.map(([key, label, unit]) => {
    const [a, b, c, d, e, f] = [m(A, key), m(B, key), m(C, key), m(D, key), m(E, key), m(F, key)];
    return `| ${label} (${unit}) | ${cell(A[key])} | ${cell(B[key])} | ${cell(C[key])} | ${fmt(c - a)} | ${fmt(c - b)} | ${fmt(c / b)} | ${cell(D[key])} | ${fmt(d / b)} | ${fmt(e)} | ${fmt(e / b)} | ${fmt(f)} | ${fmt(f / b)} |`;
  });
  const memB = r.memory.B ?? {};
  const memC = r.memory.C ?? {};
  const memoryRows = [
    ...r.method.memorySizes.map((n) => [
      `RSS with ${n} concurrent stream${n === 1 ? "" : "s"} (MiB)`,
      `streams${n}MiB`,
    ]),
    ["Cost per extra stream (KiB)", "perStreamKiB"],
    ["Idle RSS after first repeat (MiB)", "idleFirstMiB"],
    ["Idle RSS after last repeat (MiB)", "idleLastMiB"],
    ["Growth across repeats (MiB)", "growthMiB"],
    ["Spread of idle RSS across repeats, max − min (MiB)", "idleSpreadMiB"],
    ["Cost per extra stream, lowest repeat (KiB)", "perStreamMinKiB"],
    ["Cost per extra stream, highest repeat (KiB)", "perStreamMaxKiB"],
    ["Peak above idle while one 50 MB JSON request passes (MiB)", "bigRequestMiB"],
    ["Live heap at idle after the first repeat (MiB)", "heapIdleFirstMiB"],
    ["Live heap at idle after the last repeat (MiB)", "heapIdleLastMiB"],
    ["Live heap growth across repeats (MiB)", "heapGrowthMiB"],
    ["Spread of the idle live heap across repeats, max − min (MiB)", "heapIdleSpreadMiB"],
    ["Live heap per extra stream, median of repeats (KiB)", "heapPerStreamKiB"],
    ["Live heap per extra stream, lowest repeat (KiB)", "heapPerStreamMinKiB"],
    ["Live heap per extra stream, highest repeat (KiB)", "heapPerStreamMaxKiB"],
  ].map(
    ([label, key]) =>
      `| ${label} | ${fmt(memB[key ?? ""])} | ${fmt(memC[key ?? ""])} | ${fmt((memC[key ?? ""] ?? 0) - (memB[key ?? ""] ?? 0))} |`,
  );

  const addedP50 = m(C, "latencyP50") - m(B, "latencyP50");
  const addedP99 = m(C, "latencyP99") - m(B, "latencyP99");
  const tput = Math.min(m(C, "rps10") / m(B, "rps10"), m(C, "rps50") / m(B, "rps50"));
  const gapP99 = m(C, "chunkGapP99") - m(B, "chunkGapP99");
  // The live heap when it was read (the RSS moves by tens of MiB with the collector's timing alone).
  const heap = memC.heapGrowthMiB !== undefined && memB.heapGrowthMiB !== undefined;
  const growth = heap
    ? (memC.heapGrowthMiB ?? 0) - (memB.heapGrowthMiB ?? 0)
    : (memC.growthMiB ?? 0) - (memB.growthMiB ?? 0);
  const perStream = heap
    ? (memC.heapPerStreamKiB ?? 0) - (memB.heapPerStreamKiB ?? 0)
    : (memC.perStreamKiB ?? 0) - (memB.perStreamKiB ?? 0);
  const measure = heap ? "live heap" : "RSS";
  const gzipKiB = r.bundle.gzipBytes / 1024;
  const tputD = Math.min(m(D, "rps10") / m(B, "rps10"), m(D, "rps50") / m(B, "rps50"));
  const tputF = Math.min(m(F, "rps10") / m(B, "rps10"), m(F, "rps50") / m(B, "rps50"));
  const ledger = r.ledger;
  const cpuC = m(C, "cpuMsPerRequest") - m(B, "cpuMsPerRequest");
  const cpuD = m(D, "cpuMsPerRequest") - m(B, "cpuMsPerRequest");
  const addedP50D = m(D, "latencyP50") - m(B, "latencyP50");
  const targets = [
    ["Added p50 latency, C−B ≤ 0.5 ms", `${fmt(addedP50)} ms`, pass(addedP50 <= 0.5)],
    ["Added p99 latency, C−B ≤ 2 ms", `${fmt(addedP99)} ms`, pass(addedP99 <= 2)],
    ["Throughput, C/B ≥ 90 % (worse of 10 and 50 connections)", `${fmt(tput * 100, 1)} %`, pass(tput >= 0.9)],
    ["Added chunk delay p99, C−B < 1 ms", `${fmt(gapP99)} ms`, pass(gapP99 < 1)],
    [
      "Stream bytes identical to A",
      `B ${r.streamBytesIdentical.B ? "yes" : "no"}, C ${r.streamBytesIdentical.C ? "yes" : "no"} (${r.streamBytesIdentical.bytes} bytes)`,
      pass(r.streamBytesIdentical.C),
    ],
    [
      "Memory: C grows no faster than B across repeats (1 MiB noise)",
      `${fmt(growth)} MiB more than B (${measure})`,
      pass(growth <= 1),
    ],
    [
      "Memory: no per-stream buffering (extra cost per stream within 16 KiB of B)",
      `${fmt(perStream)} KiB more than B (${measure})`,
      pass(perStream <= 16),
    ],
    [
      "Default configuration throughput, one client, D/B ≥ 0.8 (worse of 10 and 50 connections)",
      fmt(tputD),
      pass(tputD >= 0.8),
    ],
    [
      "Default configuration throughput, 50 client keys, F/B ≥ 0.8 (worse of 10 and 50 connections)",
      fmt(tputF),
      pass(tputF >= 0.8),
    ],
    ["CPU added by the request path, C−B ≤ 0.1 ms", `${fmt(cpuC)} ms`, pass(cpuC <= 0.1)],
    ["CPU added by the default configuration, D−B ≤ 0.2 ms", `${fmt(cpuD)} ms`, pass(cpuD <= 0.2)],
    ["Default configuration at half B's rate: added p50, D−B ≤ 0.5 ms", `${fmt(addedP50D)} ms`, pass(addedP50D <= 0.5)],
    [
      `After ${r.method.ledgerSeconds ?? "–"} s of load at half B's rate, ledger rows = requests served`,
      ledger === undefined
        ? "–"
        : `${ledger.rows} rows for ${ledger.served} requests served, ${ledger.errors} failed${
            ledger.errors > 0 ? ` (${JSON.stringify(ledger.failures ?? {})})` : ""
          }`,
      pass(ledger !== undefined && ledger.rows === ledger.served && ledger.errors === 0),
    ],
    [
      "Bundle under 100 KB gzipped",
      `${fmt(gzipKiB, 1)} KiB gzipped, ${fmt(r.bundle.rawBytes / 1024, 1)} KiB raw`,
      pass(gzipKiB < 100),
    ],
  ].map((row) => `| ${row.join(" | ")} |`);

  return `# Benchmark results

${r.quick ? "**Quick run (smoke test): figures are indicative only.**\n\n" : ""}Run on ${r.date.slice(0, 10)}: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, workerd ${r.machine.workerd}; ${r.machine.pinned}. Rerun with \`npm run bench\` (about 10 minutes; \`npm run bench -- --quick\` for a 2-minute smoke run).

## Targets

| Target | Measured | |
| --- | --- | --- |
${targets.join("\n")}

## Figures

Each cell: the median of the ${r.method.rounds} round medians, with the range of the rounds in brackets. Arms were measured interleaved (A B C D E F, A B C D E F, …) after a warm-up.

| Figure | A: direct | B: bare Worker | C: the proxy's request path | C−A | C−B | C/B | D: default configuration | D/B | E: access control and budgets | E/B | F: default, 50 client keys | F/B |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}

## Why the speed targets are missed, by a profile

\`npm run bench:profile -- --arm C\` (or \`D\`) samples the Worker inside workerd through its inspector, under the same load as the throughput rounds, and prints self time per request by function, mapped to \`src/\`. A run on 2026-11-30 (sampled time, about a fifth above the real CPU time; the ranking is what counts):

| Where (arm C, the request path) | µs per request, sampled | Why it is there |
| --- | --- | --- |
| \`readBody\` (src/middleware/body) | 110 | The proxy reads a JSON body into memory to apply its rules, price the request and know its model; the bare Worker hands the body stream to \`fetch\` untouched. |
| Hono's dispatch, router and middleware chain | 90 | Ten small steps per request (request id, CORS, config, auth, body limit, policy, rate limit, accounting, route). |
| Reading the answer for \`usage\` (\`readJsonAnswer\`) | 35–50 | One \`arrayBuffer()\` and one \`JSON.parse\` of the answer (before: a tee and a JavaScript byte scanner, about twice that). |
| The request's id, upstream headers, kept answer headers, timers for the upstream timeout | 100 | \`crypto.randomUUID\`, header copies, an \`AbortController\` and a timer per upstream call. |
| The log line and the record (\`record\`) | 25–85 | One JSON line per request; more with an inspector attached, which receives every line. |

Arm D adds what the default configuration turns on: the ledger record and its batching (the queue's broker, consumer and D1 writes also run on the same workerd thread here, where on Cloudflare they are separate services), the client's slice and the ceiling's slice (in memory; a Durable Object call once per many requests). What remains is the request path itself: to meet 0.1 ms the proxy would have to stop reading JSON bodies (and with them the model, the rules and the budgets) or drop Hono; neither is a trade this project makes.

**Memory per stream.** Heap snapshots taken 1.2 s apart during 200 streams once showed about two pending promises kept per chunk passed, until each stream ended: workerd does that for any JavaScript stream it reads (a ten-line Worker passing a stream through a JavaScript \`ReadableStream\` or \`TransformStream\` keeps about four per chunk), so a long stream's memory grew with its length. The pass-through now writes into an \`IdentityTransformStream\` (a native stream) one chunk at a time, which keeps none: between the two snapshots a stream now grows by nothing. What a stream holds is the request's own objects (its request, response and headers, the usage reader, the framer).

## Memory (workerd resident set)

| | B: bare Worker | C: this proxy | C−B |
| --- | --- | --- | --- |
${memoryRows.join("\n")}

## How the arms were run

- **A, direct**: the load generator talks to the project's fake OpenAI upstream (\`tools/fake-openai\`, deterministic replies, nothing recorded) in its own Node process. The physical floor.
- **B, bare Worker**: \`bench/bare-worker.js\` (\`return fetch(upstream + path, request)\` and nothing else) on workerd through Miniflare's API, with the compatibility date and flags of \`wrangler.jsonc\`. The runtime floor.
- **C, the proxy's request path**: the bundle that \`wrangler deploy --dry-run\` produces, on workerd through Miniflare's API with the same date, flags, vars, Durable Object and D1 as \`wrangler.jsonc\`, with the features that cost a storage round trip switched off (\`RATE_LIMIT_RPM=0\`, \`MAX_CONCURRENT_STREAMS=0\`, \`DAILY_SPEND_LIMIT_USD\` empty: no Durable Object call; \`RECORD_USAGE=false\`: no ledger record) and everything else on: CORS, body limit, usage accounting and the log line (read and dropped, as a log shipper would).
- **D, the default configuration**: C plus what \`wrangler.jsonc\` turns on by default: every request counted in the client's rate-limit Durable Object (with limits raised out of reach so that load tests are not refused), reserved from the isolate's slice of the daily spending ceiling (\`DAILY_SPEND_LIMIT_USD\`, raised out of reach), and one usage record per request sent after the response through the usage queue, gathered in the isolate and written to D1 in batches. These are local services in Miniflare; on Cloudflare they are remote.
- **F, the default configuration with many clients**: D with 50 client keys (\`PROXY_KEYS\`), each load connection sending its own, so that 50 clients' limits are held at once.
- **The ledger**: after the rounds, D is loaded at the fixed rate for ${r.method.ledgerSeconds ?? "–"} s; once the queue has delivered everything, the ledger's new rows are counted (its tables made by the migrations, as \`npm run db:migrate\` makes them).
- **E, access control and budgets**: D plus client keys (one constant-time key check), \`ALLOWED_MODELS\`, \`MAX_OUTPUT_TOKENS\` (every body parsed, re-serialised when the cap is added) and a daily token budget (a reservation and a settlement per request).
- B, C, D, E and F run without \`wrangler dev\`'s local proxy in front, which spends about 5 ms of CPU per request of its own and would hide everything the proxy does. Each arm's workerd is a process of its own, so CPU and memory are measured per arm (\`/proc/<pid>\`).
- Non-streaming: \`POST /v1/chat/completions\`, ${r.method.secondsPerMeasurement} s per measurement. Throughput with autocannon (closed loop, 10 and 50 connections). Latency with an open-loop sender at a fixed ${r.method.fixedRatePerSecond} requests/s (half of B's maximum), each latency counted from the request's scheduled send time, so stalls are not hidden (no coordinated omission).
- Streaming: ${r.method.streamsPerRound} concurrent streams per round; upstream waits ${r.method.stream.ttftMs} ms, then sends ${r.method.stream.chunks} content chunks ${r.method.stream.gapMs} ms apart. Lateness is each chunk's arrival gap minus ${r.method.stream.gapMs} ms. The first stream of each arm is compared byte for byte with A's.
- Memory, live heap: B, C and D are read through workerd's inspector (\`bench/lib/inspector.ts\`): a heap snapshot collects all garbage first, then the JavaScript heap and the runtime's objects it holds are summed. Read halfway through each batch of streams, and at idle after each repeat. The memory targets use these figures: the resident set below moves by tens of MiB between repeats of the bare Worker itself, with the collector's and the allocator's timing, so a leak of a few MiB cannot show in it.
- Memory: ${r.method.memorySizes.join(", ")} concurrent streams of 100 chunks 20 ms apart, peak RSS sampled every 100 ms, ${r.method.memoryRepeats} repeat(s); after each repeat, the idle RSS once it has settled (three samples 200 ms apart within 0.25 MiB). Growth is the settled idle RSS after the last repeat minus after the first; the spread of the idle RSS and the lowest and highest per-stream cost across repeats show how far one run can be trusted: a leak shows as growth well beyond that spread.
- A 50 MB request: one chat request of about 50 MB (one base64 image), RSS sampled every 10 ms, the median of the repeats of how far it rose above idle. The proxy holds such a body once, in memory, to read it (in place, no copy: rewritten bodies are streamed from pieces of it); the bare Worker streams it. The first such request in a fresh isolate raises RSS by about twice the body, in workerd's own \`arrayBuffer()\` (a Worker that only reads the body shows the same); later ones reuse that memory. An isolate has 128 MB on Cloudflare, so two such requests at once in one isolate would not fit: keep \`MAX_BODY_BYTES\` lower where that matters.
- On a shared 2-core machine the p99 figures are noisy; the ranges show how much.
`;
}
