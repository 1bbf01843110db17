/**
 * The scenarios: each a request, the env it runs with, the stub upstream's reply, and a check of
 * the proxy's answer (and of what it sent upstream), run once before timing.
 */
import { CHAT_BODY, post, preflight, SEED_BODY, STREAM_BODY } from "./client";
import { API_KEY, type Bindings, makeEnv, VARS } from "./env";
import { COMPLETION, lastCall, SSE_ALL, SSE_CHUNK_COUNT, UPSTREAM_CHAT_URL, type UpstreamMode } from "./upstream";

export type Scenario = {
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

/** Whether two byte arrays hold the same bytes. */
const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);

const ALLOWED = ["https://app.example.com", "https://admin.example.com", "https://*.example.org"];
const decoder = new TextDecoder();

function checkForwarded(expectUrl: string): string | undefined {
  const captured = lastCall();
  if (captured === undefined) return "no upstream call";
  if (captured.url !== expectUrl) return `upstream URL ${captured.url}`;
  if (captured.headers.get("authorization") !== `Bearer ${API_KEY}`) return "upstream authorization is not the key";
  if (captured.headers.has("cf-ray") || captured.headers.has("host")) return "client edge headers went upstream";
  return undefined;
}

/** The JSON body of the last upstream call (the proxy sends bytes), `{}` when there was none. */
function sentJson(): Record<string, unknown> {
  const body = lastCall()?.body;
  const text = typeof body === "string" ? body : body instanceof Uint8Array ? decoder.decode(body) : undefined;
  return text === undefined ? {} : (JSON.parse(text) as Record<string, unknown>);
}

const allowOrigin = (response: Response, origin: string): string | undefined => {
  const allowed = response.headers.get("access-control-allow-origin");
  return allowed !== origin ? `access-control-allow-origin is ${allowed}` : undefined;
};

/**
 * (1) POST /v1/chat/completions, (2) the same with `stream: true`, (3) POST / (the seed route),
 * (4) an OPTIONS preflight, (5) = (1) with a 3-origin ALLOWED_ORIGINS and an allowed `Origin`
 * (exact entry), (5b) the same with an `Origin` matched by a wildcard entry.
 */
export const SCENARIOS: Scenario[] = [
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
      !same(body, SSE_ALL)
        ? `stream differs from upstream's (${body.byteLength} of ${SSE_ALL.byteLength} bytes)`
        : undefined,
  },
  {
    name: "3 POST / (seed)",
    env: makeEnv(),
    upstream: "json",
    request: post("/", SEED_BODY),
    status: 200,
    check: (_response, body) => {
      if (!same(body, COMPLETION)) return "body differs from upstream's";
      const sent = sentJson();
      if (sent.model !== VARS.DEFAULT_MODEL || sent.max_tokens === undefined) return "defaults not filled";
      return checkForwarded(UPSTREAM_CHAT_URL);
    },
  },
  {
    name: "4 OPTIONS preflight",
    env: makeEnv(),
    upstream: "json",
    request: preflight("https://app.example.com"),
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
      !same(body, COMPLETION) ? "body differs from upstream's" : allowOrigin(response, "https://admin.example.com"),
  },
  {
    name: "5b = 5, Origin matching https://*.example.org",
    env: makeEnv({ ALLOWED_ORIGINS: ALLOWED.join(",") }),
    upstream: "json",
    request: post("/v1/chat/completions", CHAT_BODY, { origin: "https://chat.example.org" }),
    status: 200,
    check: (response) => allowOrigin(response, "https://chat.example.org"),
  },
];
