/**
 * The stub upstream: `globalThis.fetch` replaced by a function that answers at once with a canned
 * OpenAI reply (a chat.completion, or its 20-chunk SSE stream), leaving the request body unread.
 * While recording, it keeps what the last call carried, for the scenarios' checks.
 */
import { concatBytes } from "../../src/lib/bytes";
import { VARS } from "./env";

const BASE_URL = (VARS.OPENAI_BASE_URL ?? "https://api.openai.com/v1").replace(/\/+$/, "");
export const UPSTREAM_CHAT_URL = `${BASE_URL}/chat/completions`;
const encoder = new TextEncoder();

export const COMPLETION = encoder.encode(
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

export const SSE_CHUNK_COUNT = 20;
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
/** The whole stream, as the client should read it. */
export const SSE_ALL = concatBytes(SSE_CHUNKS);

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

/** Which reply the stub gives: the chat.completion or its stream. */
export type UpstreamMode = "json" | "sse";
/** What one upstream call carried. */
export type UpstreamCall = { url: string; method: string; headers: Headers; body: unknown };

let upstreamMode: UpstreamMode = "json";
let recording = false;
let last: UpstreamCall | undefined;

/** Sets the reply the stub gives from now on. */
export function answerWith(mode: UpstreamMode): void {
  upstreamMode = mode;
}

/** Starts or stops recording the last call (only while checking a scenario, never while timing); forgets it either way. */
export function recordCalls(on: boolean): void {
  recording = on;
  last = undefined;
}

/** What the last upstream call carried while recording. */
export function lastCall(): UpstreamCall | undefined {
  return last;
}

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
  if (recording) {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    last = { url, method, headers: new Headers(init?.headers), body: init?.body };
  }
  if (method === "OPTIONS") return Promise.resolve(new Response(null, { status: 204 }));
  if (upstreamMode === "sse") return Promise.resolve(new Response(sseStream(), { status: 200, headers: SSE_HEADERS }));
  return Promise.resolve(new Response(COMPLETION, { status: 200, headers: JSON_HEADERS }));
}

/** Replaces `globalThis.fetch` with the stub, for the proxy and the bare arm alike. */
export function installStubUpstream(): void {
  globalThis.fetch = stubFetch as typeof fetch;
}
