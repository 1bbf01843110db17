/**
 * Profiles the proxy's request path in Node: the same Hono handler as the Worker (`createApp()`),
 * driven in-process with no network, against a stub upstream (`globalThis.fetch` replaced) that
 * answers at once with a canned OpenAI reply. Each scenario is timed for the proxy and for a bare
 * pass-through handler (`(req) => fetch(upstreamUrl, req)`) through the same stub, so the
 * difference is what the proxy itself costs per request. Node is not workerd (its Headers,
 * Request, Response and streams are JavaScript, not C++), so absolute figures differ from the
 * Worker's; the proxy's own JavaScript and where its time goes are what this measures.
 *
 *   npx tsx bench/profile.ts [--requests 20000] [--rounds 5] [--warmup 3000] [--cpu-prof] [--interval 50] [--top 25]
 *
 * `--cpu-prof` samples scenarios 1 and 2 (proxy only) with node:inspector's profiler, prints the
 * top self-time functions (file:line, source-mapped for src/), and writes the `.cpuprofile` files
 * (loadable in Chrome DevTools) to the system temp directory.
 *
 * Scenarios: (1) POST /v1/chat/completions, (2) the same with `stream: true` (20 SSE chunks),
 * (3) POST / (the seed route), (4) an OPTIONS preflight, (5) = (1) with a 3-origin ALLOWED_ORIGINS
 * and an allowed `Origin` (exact entry), (5b) the same with an `Origin` matched by a wildcard entry.
 * Each response body is read to the end. The stub upstream ignores the request body and the abort
 * signal, as a real upstream's cost would fall on the runtime, not on JavaScript: so the proxy's
 * column includes its reading of the request body (bodyLimit) but neither arm pays for sending it.
 *
 * Nothing Workers-only is stubbed: every scenario sends JSON bodies with a Content-Length, so the
 * body limit reads them into memory and never reaches `FixedLengthStream` (non-JSON uploads only).
 * `console.log` is silenced while timing; the log line is still built and stringified.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Profiler, Runtime } from "node:inspector";
import { Session } from "node:inspector/promises";
import { findSourceMap, type SourceMap } from "node:module";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { ExecutionContext } from "hono";
import { createApp } from "../src/app";

const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    rounds: { type: "string", default: "5" },
    warmup: { type: "string", default: "3000" },
    "cpu-prof": { type: "boolean", default: false },
    interval: { type: "string", default: "50" },
    top: { type: "string", default: "25" },
  },
  strict: true,
});
const positive = (name: string, raw: string | undefined): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer (got ${raw})`);
  return n;
};
const REQUESTS = positive("requests", args.requests);
const ROUNDS = positive("rounds", args.rounds);
const WARMUP = positive("warmup", args.warmup);
const SAMPLING_INTERVAL_US = positive("interval", args.interval);
const TOP = positive("top", args.top);

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SRC_URL = new URL("../src/", import.meta.url).href;

// ---------------------------------------------------------------------------------------------
// The Worker's environment: wrangler.jsonc's vars plus the secret.

type App = ReturnType<typeof createApp>;
type Bindings = Parameters<App["fetch"]>[1];

/** `wrangler.jsonc`'s `vars`: full-line comments and trailing commas removed, then plain JSON. */
function wranglerVars(): Record<string, string> {
  const text = readFileSync(join(ROOT, "wrangler.jsonc"), "utf8")
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("//"))
    .join("\n")
    .replace(/,(\s*[}\]])/g, "$1");
  const vars = (JSON.parse(text) as { vars?: Record<string, string> }).vars;
  if (vars === undefined) throw new Error("wrangler.jsonc has no vars");
  return vars;
}

const VARS = wranglerVars();
const API_KEY = "sk-bench-not-a-real-key-0123";
const ALLOWED = ["https://app.example.com", "https://admin.example.com", "https://*.example.org"];
/** The request path alone, as the benchmark's arm C: no Durable Object and no D1 in Node. */
const NO_STORAGE = { RATE_LIMIT_RPM: "0", MAX_CONCURRENT_STREAMS: "0", RECORD_USAGE: "false" };
const makeEnv = (overrides: Record<string, string> = {}): Bindings =>
  ({ ...VARS, ...NO_STORAGE, OPENAI_API_KEY: API_KEY, ...overrides }) as unknown as Bindings;

/** `waitUntil` drops the promise: the log line of a stream is written when the stream ends anyway. */
const ctx: ExecutionContext = { waitUntil(_promise) {}, passThroughOnException() {}, props: {} };

// ---------------------------------------------------------------------------------------------
// The stub upstream.

const BASE_URL = (VARS.OPENAI_BASE_URL ?? "https://api.openai.com/v1").replace(/\/+$/, "");
const UPSTREAM_CHAT_URL = `${BASE_URL}/chat/completions`;
const encoder = new TextEncoder();

const COMPLETION = encoder.encode(
  JSON.stringify({
    id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    object: "chat.completion",
    created: 1741569952,
    model: "gpt-4o-mini-2024-07-18",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: "Hello! I'm doing well, thank you for asking. How can I help you today?",
          refusal: null,
          annotations: [],
        },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: {
      prompt_tokens: 19,
      completion_tokens: 18,
      total_tokens: 37,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: "default",
    system_fingerprint: "fp_06737a9306",
  }),
);

const SSE_CHUNK_COUNT = 20;
/** 20 SSE events, one per chunk: a role delta, 17 content deltas, a finish delta, then `[DONE]`. */
const SSE_CHUNKS: readonly Uint8Array[] = Array.from({ length: SSE_CHUNK_COUNT }, (_, i) => {
  if (i === SSE_CHUNK_COUNT - 1) return encoder.encode("data: [DONE]\n\n");
  const delta =
    i === 0 ? { role: "assistant", content: "" } : i === SSE_CHUNK_COUNT - 2 ? {} : { content: ` word${i}` };
  const event = {
    id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    object: "chat.completion.chunk",
    created: 1741569952,
    model: "gpt-4o-mini-2024-07-18",
    service_tier: "default",
    system_fingerprint: "fp_06737a9306",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: i === SSE_CHUNK_COUNT - 2 ? "stop" : null }],
  };
  return encoder.encode(`data: ${JSON.stringify(event)}\n\n`);
});
const SSE_BYTES = SSE_CHUNKS.reduce((sum, chunk) => sum + chunk.byteLength, 0);

/** What OpenAI sends with a reply (as seen through Cloudflare): some kept by the proxy, most dropped. */
const UPSTREAM_HEADERS: readonly [string, string][] = [
  ["date", "Mon, 10 Mar 2025 01:25:52 GMT"],
  ["access-control-expose-headers", "X-Request-ID"],
  ["openai-organization", "user-abcdefghijklmnop"],
  ["openai-processing-ms", "312"],
  ["openai-project", "proj_abcdefghijklmnop"],
  ["openai-version", "2020-10-01"],
  ["x-envoy-upstream-service-time", "316"],
  ["x-ratelimit-limit-requests", "10000"],
  ["x-ratelimit-limit-tokens", "200000"],
  ["x-ratelimit-remaining-requests", "9999"],
  ["x-ratelimit-remaining-tokens", "199982"],
  ["x-ratelimit-reset-requests", "8.64s"],
  ["x-ratelimit-reset-tokens", "5ms"],
  ["x-request-id", "req_0123456789abcdef0123456789abcdef"],
  ["strict-transport-security", "max-age=31536000; includeSubDomains; preload"],
  ["cf-cache-status", "DYNAMIC"],
  ["set-cookie", "__cf_bm=abc; path=/; expires=Mon, 10-Mar-25 01:55:52 GMT; domain=.api.openai.com; HttpOnly; Secure"],
  ["set-cookie", "_cfuvid=def; path=/; domain=.api.openai.com; HttpOnly; Secure; SameSite=None"],
  ["x-content-type-options", "nosniff"],
  ["server", "cloudflare"],
  ["cf-ray", "91e2e3a4b5c6d7e8-AMS"],
  ["alt-svc", 'h3=":443"; ma=86400'],
];
const JSON_HEADERS: [string, string][] = [
  ["content-type", "application/json"],
  ["content-length", String(COMPLETION.byteLength)],
  ...UPSTREAM_HEADERS,
];
const SSE_HEADERS: [string, string][] = [["content-type", "text/event-stream; charset=utf-8"], ...UPSTREAM_HEADERS];

type UpstreamMode = "json" | "sse";
let upstreamMode: UpstreamMode = "json";
/** What the last upstream call carried, recorded only while checking a scenario (never while timing). */
let captured: { url: string; method: string; headers: Headers; body: unknown } | undefined;
let capturing = false;

function sseStream(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of SSE_CHUNKS) controller.enqueue(chunk);
      controller.close();
    },
  });
}

/** The stub upstream: a canned chat.completion (or its stream), the request body left unread. */
function stubFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const method = init?.method ?? (input instanceof Request ? input.method : "GET");
  if (capturing) {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    captured = { url, method, headers: new Headers(init?.headers), body: init?.body };
  }
  if (method === "OPTIONS") return Promise.resolve(new Response(null, { status: 204 }));
  if (upstreamMode === "sse") return Promise.resolve(new Response(sseStream(), { status: 200, headers: SSE_HEADERS }));
  return Promise.resolve(new Response(COMPLETION, { status: 200, headers: JSON_HEADERS }));
}
globalThis.fetch = stubFetch as typeof fetch;

// ---------------------------------------------------------------------------------------------
// The client side: what the official SDK sends, as a Worker receives it behind Cloudflare.

const PROXY = "https://openai-workers-proxy.example.workers.dev";
const CLIENT_HEADERS: Record<string, string> = {
  host: "openai-workers-proxy.example.workers.dev",
  accept: "application/json",
  "accept-encoding": "gzip, br",
  "accept-language": "*",
  authorization: "Bearer unused",
  "content-type": "application/json",
  "user-agent": "OpenAI/JS 6.49.0",
  "x-stainless-arch": "x64",
  "x-stainless-lang": "js",
  "x-stainless-os": "Linux",
  "x-stainless-package-version": "6.49.0",
  "x-stainless-retry-count": "0",
  "x-stainless-runtime": "node",
  "x-stainless-runtime-version": "v20.20.2",
  "x-stainless-timeout": "600",
  "cf-connecting-ip": "203.0.113.7",
  "cf-ipcountry": "NL",
  "cf-ray": "91e2e3a4b5c6d7e8",
  "cf-visitor": '{"scheme":"https"}',
  "x-forwarded-proto": "https",
  "x-real-ip": "203.0.113.7",
};
const MESSAGES = [
  { role: "system", content: "You are a helpful assistant. Answer briefly and politely." },
  { role: "user", content: "Hello, how are you? Please tell me something nice about the weather today." },
];
const CHAT_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: MESSAGES });
const STREAM_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: MESSAGES, stream: true });
const SEED_BODY = JSON.stringify({ messages: MESSAGES });

function post(path: string, body: string, extra: Record<string, string> = {}): () => Request {
  const headers = { ...CLIENT_HEADERS, "content-length": String(encoder.encode(body).byteLength), ...extra };
  return () => new Request(PROXY + path, { method: "POST", headers, body });
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

type Handler = (request: Request) => Response | Promise<Response>;

type Scenario = {
  name: string;
  env: Bindings;
  upstream: UpstreamMode;
  request: () => Request;
  status: number;
  /** Chunks the client reads per response (SSE only), for the per-chunk figure. */
  chunks?: number;
  /** A problem with the proxy's answer or with what it sent upstream, checked once before timing. */
  check: (response: Response, body: Uint8Array) => string | undefined;
};

const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
const joined = (chunks: readonly Uint8Array[]) => {
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
};
const SSE_ALL = joined(SSE_CHUNKS);
const decoder = new TextDecoder();

function checkForwarded(expectUrl: string): string | undefined {
  if (captured === undefined) return "no upstream call";
  if (captured.url !== expectUrl) return `upstream URL ${captured.url}`;
  if (captured.headers.get("authorization") !== `Bearer ${API_KEY}`) return "upstream authorization is not the key";
  if (captured.headers.has("cf-ray") || captured.headers.has("host")) return "client edge headers went upstream";
  return undefined;
}

const SCENARIOS: Scenario[] = [
  {
    name: "1 POST /v1/chat/completions",
    env: makeEnv(),
    upstream: "json",
    request: post("/v1/chat/completions", CHAT_BODY),
    status: 200,
    check: (response, body) =>
      !same(body, COMPLETION)
        ? "body differs from upstream's"
        : response.headers.get("x-ratelimit-remaining-tokens") === null
          ? "rate-limit headers missing"
          : checkForwarded(UPSTREAM_CHAT_URL),
  },
  {
    name: "2 POST /v1/chat/completions stream",
    env: makeEnv(),
    upstream: "sse",
    request: post("/v1/chat/completions", STREAM_BODY),
    status: 200,
    chunks: SSE_CHUNK_COUNT,
    check: (_response, body) =>
      !same(body, SSE_ALL) ? `stream differs from upstream's (${body.byteLength} of ${SSE_BYTES} bytes)` : undefined,
  },
  {
    name: "3 POST / (seed)",
    env: makeEnv(),
    upstream: "json",
    request: post("/", SEED_BODY),
    status: 200,
    check: (_response, body) => {
      if (!same(body, COMPLETION)) return "body differs from upstream's";
      const sent = typeof captured?.body === "string" ? (JSON.parse(captured.body) as Record<string, unknown>) : {};
      if (sent.model !== VARS.DEFAULT_MODEL || sent.max_tokens === undefined) return "defaults not filled";
      return checkForwarded(UPSTREAM_CHAT_URL);
    },
  },
  {
    name: "4 OPTIONS preflight",
    env: makeEnv(),
    upstream: "json",
    request: () =>
      new Request(`${PROXY}/v1/chat/completions`, {
        method: "OPTIONS",
        headers: {
          ...CLIENT_HEADERS,
          origin: "https://app.example.com",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type,x-stainless-arch,x-stainless-lang",
        },
      }),
    status: 204,
    check: (response) =>
      response.headers.get("access-control-allow-origin") === null ? "no access-control-allow-origin" : undefined,
  },
  {
    name: "5 = 1 + ALLOWED_ORIGINS (3) + Origin",
    env: makeEnv({ ALLOWED_ORIGINS: ALLOWED.join(",") }),
    upstream: "json",
    request: post("/v1/chat/completions", CHAT_BODY, { origin: "https://admin.example.com" }),
    status: 200,
    check: (response, body) =>
      !same(body, COMPLETION)
        ? "body differs from upstream's"
        : response.headers.get("access-control-allow-origin") !== "https://admin.example.com"
          ? `access-control-allow-origin is ${response.headers.get("access-control-allow-origin")}`
          : undefined,
  },
  {
    name: "5b = 5, Origin matching https://*.example.org",
    env: makeEnv({ ALLOWED_ORIGINS: ALLOWED.join(",") }),
    upstream: "json",
    request: post("/v1/chat/completions", CHAT_BODY, { origin: "https://chat.example.org" }),
    status: 200,
    check: (response) =>
      response.headers.get("access-control-allow-origin") !== "https://chat.example.org"
        ? `access-control-allow-origin is ${response.headers.get("access-control-allow-origin")}`
        : undefined,
  },
];

// ---------------------------------------------------------------------------------------------
// Timing.

const app = createApp();
const proxyHandler = (env: Bindings): Handler => {
  return (request) => app.fetch(request, env, ctx);
};
const bareHandler: Handler = (request) => fetch(UPSTREAM_CHAT_URL, request);

/** Reads the whole body; returns the number of chunks read. */
async function drain(response: Response, stream: boolean): Promise<number> {
  if (response.body === null) return 0;
  if (!stream) {
    await response.arrayBuffer();
    return 1;
  }
  const reader = response.body.getReader();
  let chunks = 0;
  for (;;) {
    const { done } = await reader.read();
    if (done) return chunks;
    chunks++;
  }
}

/** Mean µs per request over `n` sequential requests. */
async function run(handler: Handler, scenario: Scenario, n: number): Promise<number> {
  upstreamMode = scenario.upstream;
  const stream = scenario.chunks !== undefined;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const response = await handler(scenario.request());
    if (response.status !== scenario.status) {
      throw new Error(`${scenario.name}: status ${response.status}: ${await response.text()}`);
    }
    await drain(response, stream);
  }
  return Number(process.hrtime.bigint() - start) / n / 1000;
}

/** One request with everything recorded and checked; throws on a wrong answer. */
async function verify(handler: Handler, scenario: Scenario, arm: string): Promise<void> {
  upstreamMode = scenario.upstream;
  capturing = true;
  captured = undefined;
  try {
    const response = await handler(scenario.request());
    const chunks: Uint8Array[] = [];
    if (response.body !== null) {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
      }
    }
    const body = joined(chunks);
    if (response.status !== scenario.status) {
      throw new Error(`${scenario.name} (${arm}): status ${response.status}: ${decoder.decode(body)}`);
    }
    if (scenario.chunks !== undefined && chunks.length !== scenario.chunks) {
      throw new Error(`${scenario.name} (${arm}): ${chunks.length} chunks, expected ${scenario.chunks}`);
    }
    if (arm === "proxy") {
      const problem = scenario.check(response, body);
      if (problem !== undefined) throw new Error(`${scenario.name}: ${problem}`);
    }
  } finally {
    capturing = false;
    captured = undefined;
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

type Figures = { bare: number[]; proxy: number[] };

/** Warm-up, then `ROUNDS` rounds of bare and proxy in alternating order (AB BA AB …). */
async function measure(scenario: Scenario): Promise<Figures> {
  const proxy = proxyHandler(scenario.env);
  await verify(bareHandler, scenario, "bare");
  await verify(proxy, scenario, "proxy");
  await run(bareHandler, scenario, WARMUP);
  await run(proxy, scenario, WARMUP);
  const perRound = Math.max(1, Math.round(REQUESTS / ROUNDS));
  const figures: Figures = { bare: [], proxy: [] };
  for (let round = 0; round < ROUNDS; round++) {
    if (round % 2 === 0) {
      figures.bare.push(await run(bareHandler, scenario, perRound));
      figures.proxy.push(await run(proxy, scenario, perRound));
    } else {
      figures.proxy.push(await run(proxy, scenario, perRound));
      figures.bare.push(await run(bareHandler, scenario, perRound));
    }
  }
  return figures;
}

const fmt = (n: number, digits = 1) => n.toFixed(digits).padStart(7);
const spread = (values: number[]) => `${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)}`;

/** Runs `body` with `console.log` silenced: the proxy's log line is still built and stringified, just not written. */
async function quietly<T>(body: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = () => {};
  try {
    return await body();
  } finally {
    // A stream's log line is written in `waitUntil`, a few ticks after its last chunk was read.
    await new Promise((resolve) => setImmediate(resolve));
    console.log = log;
  }
}

// ---------------------------------------------------------------------------------------------
// CPU profile.

type Sample = { self: number; label: string; kind: Kind };
type Kind = "src" | "hono" | "undici" | "streams" | "node" | "harness" | "vm" | "other";

const sourceMaps = new Map<string, SourceMap | undefined>();

function classify(frame: Runtime.CallFrame): Kind {
  const { url, functionName } = frame;
  if (url.startsWith(SRC_URL)) return "src";
  if (url.includes("/node_modules/hono/")) return "hono";
  if (url.includes("/bench/")) return "harness";
  if (url.includes("undici")) return "undici";
  if (url.startsWith("node:internal/webstreams")) return "streams";
  if (url.startsWith("node:")) return "node";
  if (url === "" && functionName.startsWith("(")) return "vm";
  return "other";
}

/** `name file:line`, source-mapped for src/ (tsx compiles it), relative to the repo. */
function label(frame: Runtime.CallFrame): string {
  const name = frame.functionName || "(anonymous)";
  if (frame.url === "") return name;
  let file = frame.url;
  let line = frame.lineNumber + 1;
  if (file.startsWith("file:")) {
    if (!sourceMaps.has(file)) sourceMaps.set(file, findSourceMap(file) ?? findSourceMap(fileURLToPath(file)));
    const entry = sourceMaps.get(file)?.findEntry(frame.lineNumber, frame.columnNumber);
    if (entry !== undefined && "originalLine" in entry) {
      file = entry.originalSource;
      line = entry.originalLine + 1;
    }
    if (file.startsWith("file:")) file = relative(ROOT, fileURLToPath(file)).replace(/^node_modules\//, "");
  }
  return `${name} ${file}:${line}`;
}

function analyse(profile: Profiler.Profile, requests: number, title: string): void {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const total = profile.endTime - profile.startTime;

  const own = (kind: Kind) => kind === "src" || kind === "hono";
  const charged = (kind: Kind) => own(kind) || kind === "harness";
  const selfBy = new Map<string, Sample>();
  const inclusiveBy = new Map<string, Sample>();
  const overallBy = new Map<string, Sample>();
  const kinds = new Map<Kind, number>();
  const labels = new Map<number, { label: string; kind: Kind }>();
  const describe = (id: number) => {
    let known = labels.get(id);
    if (known === undefined) {
      const frame = nodes.get(id)?.callFrame;
      known = frame === undefined ? { label: "?", kind: "other" } : { label: label(frame), kind: classify(frame) };
      labels.set(id, known);
    }
    return known;
  };
  const add = (map: Map<string, Sample>, key: { label: string; kind: Kind }, time: number) => {
    const entry = map.get(key.label);
    if (entry === undefined) map.set(key.label, { self: time, label: key.label, kind: key.kind });
    else entry.self += time;
  };

  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] ?? 0;
    // timeDeltas[i + 1] is the time from this sample to the next: the time this stack was on the CPU.
    const time = deltas[i + 1] ?? total / Math.max(1, samples.length);
    const me = describe(id);
    kinds.set(me.kind, (kinds.get(me.kind) ?? 0) + time);
    add(overallBy, me, time);
    if (own(me.kind)) add(selfBy, me, time);
    // Runtime time (Headers, Response, streams, URL, …) charged to the nearest src/, hono or harness
    // caller: the stub upstream's and the client's work is the harness's, in both arms alike.
    let at: number | undefined = id;
    while (at !== undefined && !charged(describe(at).kind)) at = parent.get(at);
    if (at !== undefined) add(inclusiveBy, describe(at), time);
  }

  const perRequest = (time: number) => time / requests;
  const pct = (time: number) => `${((100 * time) / total).toFixed(1).padStart(5)}%`;
  console.log(`\n## CPU profile: ${title} (${requests} requests, ${(total / 1000).toFixed(0)} ms sampled)`);
  console.log("\nSelf time by kind (µs/request):");
  for (const [kind, time] of [...kinds].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${kind.padEnd(8)} ${fmt(perRequest(time), 2)} µs  ${pct(time)}`);
  }
  const table = (heading: string, map: Map<string, Sample>, limit = TOP) => {
    console.log(`\n${heading}`);
    for (const entry of [...map.values()].sort((a, b) => b.self - a.self).slice(0, limit)) {
      console.log(`  ${fmt(perRequest(entry.self), 2)} µs ${pct(entry.self)}  ${entry.label}`);
    }
  };
  const chargedTo = (kind: Kind) =>
    [...inclusiveBy.values()].filter((entry) => entry.kind === kind).reduce((sum, entry) => sum + entry.self, 0);
  const [src, hono, harness] = [chargedTo("src"), chargedTo("hono"), chargedTo("harness")];
  console.log("\nSelf + runtime callees, charged to the nearest src/, hono or bench/ frame (µs/request):");
  console.log(`  src/     ${fmt(perRequest(src), 2)} µs  ${pct(src)}`);
  console.log(`  hono     ${fmt(perRequest(hono), 2)} µs  ${pct(hono)}`);
  console.log(
    `  bench/   ${fmt(perRequest(harness), 2)} µs  ${pct(harness)}  (client Request, stub upstream, reading: both arms)`,
  );
  const rest = total - src - hono - harness;
  console.log(`  neither  ${fmt(perRequest(rest), 2)} µs  ${pct(rest)}  (GC, microtasks, timers, idle)`);
  table(`Top ${TOP} self time, src/ and hono (µs/request):`, selfBy);
  table(
    `Top ${TOP} self + runtime callees (Headers, URL, streams, … charged to the nearest src/, hono or bench/ frame):`,
    inclusiveBy,
  );
  const limit = Math.min(TOP, 15);
  table(`Top ${limit} self time, everything (runtime included):`, overallBy, limit);
}

/** Samples the proxy over `requests` requests of `scenario`, after a warm-up; the profile is also written to a file. */
async function cpuProfile(scenario: Scenario, requests: number): Promise<{ profile: Profiler.Profile; file: string }> {
  const session = new Session();
  session.connect();
  try {
    const handler = proxyHandler(scenario.env);
    await run(handler, scenario, WARMUP);
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
    await session.post("Profiler.start");
    await run(handler, scenario, requests);
    const { profile } = await session.post("Profiler.stop");
    const file = join(tmpdir(), `proxy-${scenario.name.replace(/[^a-z0-9]+/gi, "-")}-${process.pid}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return { profile, file };
  } finally {
    session.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(
    `Node ${process.version}, ${REQUESTS} requests per arm in ${ROUNDS} rounds after ${WARMUP} warm-up; ` +
      "µs per request, median of rounds [min–max]; bare = (req) => fetch(upstreamUrl, req) through the same stub.\n",
  );
  console.log(
    `${"scenario".padEnd(46)} ${"bare".padStart(7)} ${"proxy".padStart(7)} ${"added".padStart(7)} ${"×".padStart(5)}  proxy spread     per chunk (proxy, added)`,
  );
  for (const scenario of SCENARIOS) {
    const figures = await quietly(() => measure(scenario));
    const bare = median(figures.bare);
    const proxy = median(figures.proxy);
    const perChunk =
      scenario.chunks === undefined
        ? ""
        : `${(proxy / scenario.chunks).toFixed(2)} µs, ${((proxy - bare) / scenario.chunks).toFixed(2)} µs`;
    console.log(
      `${scenario.name.padEnd(46)} ${fmt(bare)} ${fmt(proxy)} ${fmt(proxy - bare)} ${(proxy / bare).toFixed(2).padStart(5)}  ${`[${spread(figures.proxy)}]`.padEnd(16)} ${perChunk}`,
    );
  }

  if (args["cpu-prof"]) {
    for (const scenario of SCENARIOS.slice(0, 2)) {
      const { profile, file } = await quietly(() => cpuProfile(scenario, REQUESTS));
      analyse(profile, REQUESTS, scenario.name);
      console.log(`\n  profile written to ${file}`);
    }
  }
}

await main();
