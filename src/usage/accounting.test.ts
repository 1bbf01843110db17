import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, controllableSse, json, mockUpstream, openaiJson, postJson, requestLogs, text } from "../testing";

const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
const USAGE = {
  prompt_tokens: 1000,
  completion_tokens: 500,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 200 },
  completion_tokens_details: { reasoning_tokens: 100 },
};
let ip = 0;
const newClient = () => ({ "cf-connecting-ip": `203.0.113.${++ip}` });

type Row = Record<string, number | string | null>;
async function ledger(requestId: string): Promise<Row | undefined> {
  return (
    (await env.USAGE_DB.prepare("SELECT * FROM usage WHERE request_id = ?").bind(requestId).first<Row>()) ?? undefined
  );
}

const chunk = (delta: object, extra: object = {}) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta }], ...extra })}\n\n`;
const usageChunk = `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [], usage: USAGE })}\n\n`;

describe("accounting", () => {
  it("records a non-streaming reply's usage, cost and client in the log and the ledger", async () => {
    mockUpstream(() => openaiJson({ id: "x", choices: [], usage: USAGE }, 200, { "x-request-id": "req_nonstream" }));
    const { response, settled } = await call(postJson("/v1/chat/completions", CHAT, newClient()));
    expect((await json(response)).usage).toEqual(USAGE);
    await settled();
    // gpt-4o-mini: 800 × 0.15 + 200 × 0.075 + 500 × 0.60 per million = 0.000435 USD
    expect(requestLogs()[0]).toMatchObject({
      promptTokens: 1000,
      completionTokens: 500,
      cachedTokens: 200,
      reasoningTokens: 100,
    });
    expect(requestLogs()[0]?.costUsd).toBeCloseTo(0.000435, 9);
    const row = await ledger("req_nonstream");
    expect(row).toMatchObject({
      client: `203.0.113.${ip}`,
      client_kind: "ip",
      route: "/v1/chat/completions",
      model: "gpt-4o-mini",
      status: 200,
      prompt_tokens: 1000,
      completion_tokens: 500,
      total_tokens: 1500,
      cached_tokens: 200,
      reasoning_tokens: 100,
      incomplete: 0,
    });
    expect(row?.cost_usd).toBeCloseTo(0.000435, 9);
  });

  it("writes no record with RECORD_USAGE=false, and still logs the usage", async () => {
    mockUpstream(() => openaiJson({ usage: USAGE }, 200, { "x-request-id": "req_not_recorded" }));
    const { response, settled } = await call(postJson("/v1/chat/completions", CHAT, newClient()), {
      RECORD_USAGE: "false",
    });
    await text(response);
    await settled();
    expect(await ledger("req_not_recorded")).toBeUndefined();
    expect(requestLogs()[0]).toMatchObject({ promptTokens: 1000 });
  });

  it("records an unknown model with cost null, not a guess", async () => {
    mockUpstream(() => openaiJson({ usage: USAGE }, 200, { "x-request-id": "req_unknown_model" }));
    const { response, settled } = await call(
      postJson("/v1/chat/completions", { ...CHAT, model: "my-finetune" }, newClient()),
    );
    await text(response);
    await settled();
    expect(await ledger("req_unknown_model")).toMatchObject({ prompt_tokens: 1000, cost_usd: null });
  });

  it("asks a stream for its usage, reads it, and keeps the extra chunk from a client that did not ask", async () => {
    const sse = controllableSse({ "x-request-id": "req_stream_injected" });
    const upstream = mockUpstream(() => sse.response);
    const { response, settled } = await call(postJson("/v1/chat/completions", { ...CHAT, stream: true }, newClient()));
    expect(await upstream[0]?.json()).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const visible = [
      chunk({ role: "assistant", content: "" }, { usage: null }),
      chunk({ content: "Hello" }, { usage: null }),
    ];
    for (const part of visible) sse.send(part);
    sse.send(usageChunk);
    sse.send("data: [DONE]\n\n");
    sse.end();
    expect(await text(response)).toBe(`${visible.join("")}data: [DONE]\n\n`);
    await settled();
    expect(await ledger("req_stream_injected")).toMatchObject({
      prompt_tokens: 1000,
      completion_tokens: 500,
      incomplete: 0,
    });
  });

  it("counts a stream whose path is percent-encoded like any other", async () => {
    const sse = controllableSse();
    const upstream = mockUpstream(() => sse.response);
    const { response } = await call(postJson("/v1/chat/%63ompletions", { ...CHAT, stream: true }, newClient()));
    expect(await upstream[0]?.json()).toMatchObject({ stream_options: { include_usage: true } });
    sse.end();
    await text(response);
  });

  it("leaves the usage chunk in place for a client that asked for it", async () => {
    const sse = controllableSse({ "x-request-id": "req_stream_asked" });
    const upstream = mockUpstream(() => sse.response);
    const body = { ...CHAT, stream: true, stream_options: { include_usage: true } };
    const raw = JSON.stringify(body);
    const { response, settled } = await call(postJson("/v1/chat/completions", raw, newClient()));
    expect(await upstream[0]?.text()).toBe(raw);
    const all = [chunk({ content: "Hi" }, { usage: null }), usageChunk, "data: [DONE]\n\n"];
    for (const part of all) sse.send(part);
    sse.end();
    expect(await text(response)).toBe(all.join(""));
    await settled();
    expect(await ledger("req_stream_asked")).toMatchObject({ total_tokens: 1500 });
  });

  it("reads a Responses API stream's usage from response.completed", async () => {
    const sse = controllableSse({ "x-request-id": "req_responses" });
    mockUpstream(() => sse.response);
    const { response, settled } = await call(
      postJson("/v1/responses", { model: "gpt-4o", input: "hi", stream: true }, newClient()),
    );
    const usage = {
      input_tokens: 40,
      output_tokens: 2,
      total_tokens: 42,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens_details: { reasoning_tokens: 0 },
    };
    sse.send(
      `event: response.output_text.delta\ndata: ${JSON.stringify({ type: "response.output_text.delta", delta: "Hi" })}\n\n`,
    );
    sse.send(
      `event: response.completed\ndata: ${JSON.stringify({ type: "response.completed", response: { id: "r", usage } })}\n\n`,
    );
    sse.end();
    await text(response);
    await settled();
    expect(await ledger("req_responses")).toMatchObject({ prompt_tokens: 40, completion_tokens: 2, incomplete: 0 });
  });

  it("marks a stream the client abandoned as incomplete, with what was seen", async () => {
    const sse = controllableSse({ "x-request-id": "req_aborted" });
    mockUpstream(() => sse.response);
    const { response, settled } = await call(postJson("/v1/chat/completions", { ...CHAT, stream: true }, newClient()));
    sse.send(chunk({ content: "Hel" }, { usage: null }));
    sse.send(chunk({ content: "lo" }, { usage: null }));
    const reader = response.body?.getReader();
    await reader?.read();
    await reader?.cancel();
    await settled();
    const row = await ledger("req_aborted");
    expect(row).toMatchObject({ incomplete: 1, prompt_tokens: null });
    expect(Number(row?.total_tokens)).toBeGreaterThan(0);
    expect(requestLogs()[0]).toMatchObject({ incomplete: true, outcome: "cancelled" });
  });
});

describe("daily token budgets", () => {
  it("refuses a client that has spent its budget with 429 insufficient_quota until the next UTC day", async () => {
    mockUpstream(() => openaiJson({ usage: { prompt_tokens: 600, completion_tokens: 500, total_tokens: 1100 } }));
    const client = newClient();
    const vars = { DAILY_TOKEN_BUDGET: "1000" };
    const first = await call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 100 }, client), vars);
    expect(first.response.status).toBe(200);
    await text(first.response);
    await first.settled();
    const second = await call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 100 }, client), vars);
    expect(second.response.status).toBe(429);
    const retryAfter = Number(second.response.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    expect(await json(second.response)).toMatchObject({
      error: { type: "insufficient_quota", code: "insufficient_quota" },
    });
  });

  it("holds a request without an output cap to the output it reserved", async () => {
    const upstream = mockUpstream(() =>
      openaiJson({ usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }),
    );
    await call(postJson("/v1/chat/completions", CHAT, newClient()), { DAILY_TOKEN_BUDGET: "100000" });
    expect(await upstream[0]?.json()).toMatchObject({ max_tokens: 4096 });
  });

  it("lets at most one reservation past the budget under 50 concurrent requests", async () => {
    const upstream = mockUpstream(() =>
      openaiJson({ usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }),
    );
    const client = newClient();
    const body = { ...CHAT, max_tokens: 1000 };
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        call(postJson("/v1/chat/completions", body, client), { DAILY_TOKEN_BUDGET: "5000" }),
      ),
    );
    const admitted = results.filter((r) => r.response.status === 200).length;
    // Each reserves its 1 000-token cap plus its input: at most ceil(5000 / reservation) + 0 get through.
    expect(admitted).toBeGreaterThanOrEqual(4);
    expect(admitted).toBeLessThanOrEqual(5);
    expect(upstream).toHaveLength(admitted);
    await Promise.all(results.map((r) => r.settled()));
  });
});
