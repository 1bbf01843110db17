import { describe, expect, it } from "vitest";
import { call, controllableSse, mockUpstream, openaiJson, postJson, proxyRequest, text } from "../testing";
import { EXPOSED_HEADERS, isPassed, SAFELISTED_HEADERS } from "./client-headers";

const ORIGIN = "https://app.example.com";
const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
/** Every header OpenAI may answer with that a client acts on, and some it must never see. */
const UPSTREAM_HEADERS = {
  "x-request-id": "req_1",
  "openai-processing-ms": "12",
  "openai-version": "2020-10-01",
  "openai-poll-after-ms": "500",
  "retry-after": "2",
  "retry-after-ms": "2000",
  "x-should-retry": "true",
  "x-ratelimit-limit-tokens": "30000",
  "x-ratelimit-remaining-tokens": "29000",
  "x-ratelimit-reset-tokens": "2s",
  etag: '"abc"',
  "content-disposition": 'attachment; filename="a.jsonl"',
  "content-range": "bytes 0-9/100",
  "set-cookie": "__cf_bm=x",
  "openai-organization": "org-secret",
};

/** Every kind of answer the proxy gives, each as the client receives it. */
async function everyAnswer(): Promise<Response[]> {
  const answers: Response[] = [];
  const send = async (request: Request, vars: Record<string, string> = {}) => {
    const { response } = await call(request, { ALLOWED_ORIGINS: ORIGIN, ...vars });
    await text(response);
    answers.push(response);
  };
  const headers = { origin: ORIGIN, "cf-connecting-ip": "192.0.2.99" };
  mockUpstream(() => openaiJson({ usage: { prompt_tokens: 1, completion_tokens: 1 } }, 200, UPSTREAM_HEADERS));
  await send(postJson("/v1/chat/completions", CHAT, headers), { RATE_LIMIT_RPM: "1000", DAILY_TOKEN_BUDGET: "100000" });
  await send(postJson("/v1/chat/completions", CHAT, headers), { DAILY_BUDGET_USD: "1", DAILY_TOKEN_BUDGET: "100000" });
  await send(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 99 }, headers), { DAILY_BUDGET_USD: "0.000001" });
  await send(proxyRequest("/me", { headers }), { DAILY_BUDGET_USD: "1" });
  mockUpstream(() => openaiJson({ error: { message: "slow", type: "requests" } }, 429, UPSTREAM_HEADERS));
  await send(postJson("/v1/chat/completions", CHAT, headers));
  const sse = controllableSse(UPSTREAM_HEADERS);
  mockUpstream(() => sse.response);
  sse.end();
  await send(postJson("/v1/chat/completions", { ...CHAT, stream: true }, headers));
  mockUpstream(() => openaiJson({ error: { message: "bad key", code: "invalid_api_key" } }, 401));
  await send(postJson("/v1/chat/completions", CHAT, headers));
  mockUpstream(() => openaiJson({ error: { code: "unsupported_country_region_territory" } }, 403));
  await send(postJson("/v1/chat/completions", CHAT, headers));
  mockUpstream(() => {
    throw new TypeError("fetch failed");
  });
  await send(postJson("/v1/chat/completions", CHAT, headers));
  await send(postJson("/v1/chat/completions", CHAT, headers), { PROXY_KEYS: "web:pk_0123456789abcdef0" });
  await send(proxyRequest("/v1/models", { method: "PUT", headers }));
  await send(proxyRequest("/nope", { headers }));
  await send(postJson("/v1/chat/completions", { ...CHAT, pad: "x".repeat(100) }, headers), { MAX_BODY_BYTES: "50" });
  await send(postJson("/v1/chat/completions", CHAT, headers), { RATE_LIMIT_RPM: "1" });
  await send(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 99 }, headers), { DAILY_TOKEN_BUDGET: "10" });
  await send(postJson("/v1/chat/completions", CHAT, headers), { OPENAI_API_KEY: "" });
  return answers;
}

describe("the headers a client acts on", () => {
  it("are all exposed to pages in other origins, on every kind of answer", async () => {
    const exposed = new Set(EXPOSED_HEADERS.split(", "));
    const hidden = new Set<string>();
    const statuses = new Set<number>();
    for (const response of await everyAnswer()) {
      statuses.add(response.status);
      for (const name of response.headers.keys()) {
        const cors = name.startsWith("access-control-") || name === "vary";
        if (!cors && !exposed.has(name) && !SAFELISTED_HEADERS.has(name))
          hidden.add(`${name} (on a ${response.status})`);
      }
    }
    // The answers covered what they should: success, upstream's and the proxy's errors of every kind.
    expect([...statuses].sort()).toEqual([200, 401, 403, 404, 405, 413, 429, 500, 502]);
    expect([...hidden]).toEqual([]);
  });

  it("include what the proxy sets for SDKs to act on: x-should-retry, retry-after, the request id", () => {
    for (const name of [
      "x-should-retry",
      "retry-after",
      "retry-after-ms",
      "x-request-id",
      "x-ratelimit-remaining-requests",
      "x-budget-remaining-usd",
      "x-budget-reset",
    ]) {
      expect(EXPOSED_HEADERS.split(", ")).toContain(name);
    }
  });

  it("never include what must stay behind: cookies and upstream's organization", () => {
    expect(isPassed("set-cookie")).toBe(false);
    expect(isPassed("openai-organization")).toBe(false);
    expect(isPassed("openai-poll-after-ms")).toBe(true);
  });
});
