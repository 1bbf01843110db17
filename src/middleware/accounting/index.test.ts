import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TABLE_FALLBACK_PRICE } from "../../config";
import { limiterFor } from "../../limits/client";
import {
  call,
  controllableSse,
  json,
  leavable,
  logged,
  mockUpstream,
  openaiJson,
  postJson,
  proxyRequest,
  requestLogs,
  text,
} from "../../testing";
import { costUsd } from "../../usage/cost";
import { DEFAULT_OUTPUT_RESERVATION } from "../../usage/reservation";
import { plainUsage } from "../../usage/usage";

const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
/** What CHAT reserves: at most a token per byte of its body, and the output cap the proxy sends with it. */
const CHAT_RESERVATION = JSON.stringify(CHAT).length + DEFAULT_OUTPUT_RESERVATION;
const USAGE = {
  prompt_tokens: 1000,
  completion_tokens: 500,
  total_tokens: 1500,
  prompt_tokens_details: { cached_tokens: 200 },
  completion_tokens_details: { reasoning_tokens: 100 },
};
const BUDGET = { DAILY_TOKEN_BUDGET: "1000000" };

/** A client no other test shares: an IPv6 address of its own, so its own limiter and budget. */
function newClient() {
  const address = `2001:db8:${crypto.randomUUID().replaceAll("-", "").slice(0, 16).match(/.{4}/g)?.join(":")}`;
  return { headers: { "cf-connecting-ip": address }, ip: address };
}

/** What the client's daily token budget has spent and holds reserved today. */
async function spentToday(address: string) {
  return limiterFor(env.RATE_LIMITER, `ip:${address}`).usedOn(new Date().toISOString().slice(0, 10));
}

type Row = Record<string, number | string | null>;
async function ledger(requestId: string): Promise<Row | undefined> {
  return (
    (await env.USAGE_DB.prepare("SELECT * FROM usage WHERE request_id = ?").bind(requestId).first<Row>()) ?? undefined
  );
}

const chunk = (delta: object, extra: object = {}) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta }], ...extra })}\n\n`;
const usageChunk = `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [], usage: USAGE })}\n\n`;

/**
 * Sends one request for a fresh client with a daily token budget, lets it end, and returns what its
 * budget was charged, its response and its log line.
 */
async function charged(request: (client: ReturnType<typeof newClient>) => Request, vars: Record<string, string> = {}) {
  const client = newClient();
  const before = await spentToday(client.ip);
  const { response, settled } = await call(request(client), { ...BUDGET, ...vars });
  const body = await text(response).catch(() => "");
  await settled();
  const after = await spentToday(client.ip);
  return { spent: after.spent - before.spent, reserved: after.reserved, response, body, log: requestLogs().at(-1) };
}

describe("what a request that upstream never saw is charged: nothing", () => {
  it.each([
    [
      "a model outside ALLOWED_MODELS (403)",
      postJson("/v1/chat/completions", { ...CHAT, model: "gpt-4o", max_tokens: 4000 }),
      403,
    ],
    [
      "a path outside ALLOWED_PATHS (403)",
      postJson("/v1/embeddings", { model: "text-embedding-3-small", input: "x" }),
      403,
    ],
    ["a POST / without messages (400)", postJson("/", { model: "gpt-4o-mini" }), 400],
    [
      "a POST / that is not JSON (415)",
      proxyRequest("/", { method: "POST", body: "x", headers: { "content-type": "text/plain" } }),
      415,
    ],
    ["a body that is not JSON (400)", postJson("/v1/chat/completions", "{oops"), 400],
    [
      "an output cap over MAX_OUTPUT_TOKENS (400)",
      postJson("/v1/chat/completions", { ...CHAT, max_tokens: 9000 }),
      400,
    ],
  ])("%s", async (_, template, status) => {
    const upstream = mockUpstream(() => openaiJson({ usage: USAGE }));
    const result = await charged(
      (client) => {
        const request = new Request(template, { headers: new Headers(template.headers) });
        for (const [name, value] of Object.entries(client.headers)) request.headers.set(name, value);
        return request;
      },
      { ALLOWED_MODELS: "gpt-4o-mini", ALLOWED_PATHS: "/v1/chat/completions", MAX_OUTPUT_TOKENS: "8000" },
    );
    expect(result.response.status).toBe(status);
    expect(upstream).toHaveLength(0);
    expect(result).toMatchObject({ spent: 0, reserved: 0 });
    expect(result.log).toMatchObject({ basis: "none", promptTokens: 0, completionTokens: 0, outcome: "not_sent" });
  });

  it("lets an allowed request through after three refused ones, the budget untouched by them", async () => {
    mockUpstream(() => openaiJson({ usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } }));
    const client = newClient();
    const vars = { DAILY_TOKEN_BUDGET: "10000", ALLOWED_MODELS: "gpt-4o-mini" };
    for (let i = 0; i < 3; i++) {
      const refused = await call(
        postJson("/v1/chat/completions", { ...CHAT, model: "gpt-4o", max_tokens: 4000 }, client.headers),
        vars,
      );
      expect(refused.response.status).toBe(403);
      await refused.settled();
    }
    const allowed = await call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 4000 }, client.headers), vars);
    expect(allowed.response.status).toBe(200);
    await text(allowed.response);
    await allowed.settled();
    expect(await spentToday(client.ip)).toMatchObject({ spent: 15, reserved: 0 });
  });

  it("when upstream cannot be reached (502)", async () => {
    mockUpstream(() => {
      throw new TypeError("fetch failed");
    });
    const result = await charged((client) => postJson("/v1/chat/completions", CHAT, client.headers));
    expect(result.response.status).toBe(502);
    expect(result).toMatchObject({ spent: 0, reserved: 0 });
    expect(result.log).toMatchObject({ basis: "none", outcome: "unreachable" });
  });

  it.each([400, 401, 404, 409, 422, 429, 500, 503])("when upstream answers %i", async (status) => {
    mockUpstream(() => openaiJson({ error: { message: "no", type: "x", param: null, code: null } }, status));
    const result = await charged((client) => postJson("/v1/chat/completions", CHAT, client.headers));
    expect(result).toMatchObject({ spent: 0, reserved: 0 });
    expect(result.log).toMatchObject({ basis: "none", outcome: "upstream_error", upstreamStatus: status });
  });
});

describe("what a request that upstream answered is charged: what upstream reported", () => {
  it("a chat completion: its usage, in the budget, the log and the ledger, with its cost", async () => {
    mockUpstream(() => openaiJson({ id: "x", choices: [], usage: USAGE }, 200, { "x-request-id": "req_nonstream" }));
    const result = await charged((client) => postJson("/v1/chat/completions", CHAT, client.headers));
    expect(JSON.parse(result.body).usage).toEqual(USAGE);
    expect(result).toMatchObject({ spent: 1500, reserved: 0 });
    // gpt-4o-mini: 800 × 0.15 + 200 × 0.075 + 500 × 0.60 per million = 0.000435 USD
    expect(result.log).toMatchObject({
      basis: "reported",
      incomplete: false,
      promptTokens: 1000,
      completionTokens: 500,
      cachedTokens: 200,
      reasoningTokens: 100,
    });
    expect(result.log?.costUsd).toBeCloseTo(0.000435, 9);
    const row = await ledger("req_nonstream");
    expect(row).toMatchObject({
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
      basis: "reported",
    });
    expect(row?.cost_usd).toBeCloseTo(0.000435, 9);
  });

  it("an image generation (gpt-image-1): its token usage, priced as image tokens", async () => {
    const usage = {
      total_tokens: 6150,
      input_tokens: 50,
      output_tokens: 6100,
      input_tokens_details: { text_tokens: 50, image_tokens: 0 },
    };
    mockUpstream(() =>
      openaiJson({ created: 1, data: [{ b64_json: "iVBOR" }], usage }, 200, { "x-request-id": "req_image" }),
    );
    const result = await charged((client) =>
      postJson("/v1/images/generations", { model: "gpt-image-1", prompt: "a cat" }, client.headers),
    );
    expect(result).toMatchObject({ spent: 6150, reserved: 0 });
    const row = await ledger("req_image");
    expect(row).toMatchObject({ model: "gpt-image-1", prompt_tokens: 50, completion_tokens: 6100, basis: "reported" });
    expect(row?.cost_usd).toBeCloseTo((50 * 5 + 6100 * 40) / 1e6, 9);
  });

  it("an image stream: the usage of its image_generation.completed event", async () => {
    const sse = controllableSse();
    mockUpstream(() => sse.response);
    const client = newClient();
    const pending = call(
      postJson("/v1/images/generations", { model: "gpt-image-1", prompt: "a cat", stream: true }, client.headers),
      BUDGET,
    );
    const usage = {
      total_tokens: 4210,
      input_tokens: 50,
      output_tokens: 4160,
      input_tokens_details: { text_tokens: 50, image_tokens: 0 },
    };
    sse.send(
      `event: image_generation.completed\ndata: ${JSON.stringify({ type: "image_generation.completed", b64_json: "iVBOR", usage })}\n\n`,
    );
    sse.end();
    const { response, settled } = await pending;
    await text(response);
    await settled();
    expect(await spentToday(client.ip)).toMatchObject({ spent: 4210, reserved: 0 });
  });

  it("a transcription uploaded as multipart (gpt-4o-transcribe): its audio token usage", async () => {
    const usage = {
      type: "tokens",
      input_tokens: 1020,
      input_token_details: { text_tokens: 20, audio_tokens: 1000 },
      output_tokens: 200,
      total_tokens: 1220,
    };
    mockUpstream(() => openaiJson({ text: "hello", usage }, 200, { "x-request-id": "req_transcription" }));
    const result = await charged((client) => {
      const form = new FormData();
      form.append("model", "gpt-4o-transcribe");
      form.append("file", new Blob([new Uint8Array(6000)], { type: "audio/mpeg" }), "a.mp3");
      return proxyRequest("/v1/audio/transcriptions", { method: "POST", body: form, headers: client.headers });
    });
    expect(result).toMatchObject({ spent: 1220, reserved: 0 });
    expect(await ledger("req_transcription")).toMatchObject({
      prompt_tokens: 1020,
      completion_tokens: 200,
      basis: "reported",
    });
  });

  it("a POST to any other path whose answer carries usage", async () => {
    mockUpstream(() => openaiJson({ object: "thing", usage: { input_tokens: 7, output_tokens: 3, total_tokens: 10 } }));
    const result = await charged(
      (client) => postJson("/v1/some/future/endpoint", { model: "gpt-4o-mini" }, client.headers),
      // Named, or a budget would refuse it (it might spend where the proxy cannot see).
      { ALLOWED_PATHS: "/v1/some/future/endpoint,/v1/chat/completions" },
    );
    expect(result).toMatchObject({ spent: 10, reserved: 0 });
  });

  it("nothing for a read, even when it repeats a usage (a retrieved response)", async () => {
    mockUpstream(() =>
      openaiJson({
        id: "resp_1",
        object: "response",
        usage: { input_tokens: 700, output_tokens: 300, total_tokens: 1000 },
      }),
    );
    const result = await charged((client) => proxyRequest("/v1/responses/resp_1", { headers: client.headers }));
    expect(result).toMatchObject({ spent: 0, reserved: 0 });
    expect(result.log).toMatchObject({ basis: "none" });
  });

  it("nothing for a free POST whose answer repeats a usage already billed (updating a stored completion)", async () => {
    mockUpstream(() =>
      openaiJson({
        id: "chatcmpl-1",
        object: "chat.completion",
        usage: { prompt_tokens: 900, completion_tokens: 100 },
      }),
    );
    const result = await charged((client) =>
      postJson("/v1/chat/completions/chatcmpl-1", { metadata: { topic: "x" } }, client.headers),
    );
    expect(result).toMatchObject({ spent: 0, reserved: 0 });
    expect(result.log).toMatchObject({ basis: "none" });
  });

  it("nothing for a POST that bills no tokens and reports none (a file upload)", async () => {
    mockUpstream(() => openaiJson({ id: "file-1", object: "file" }));
    const result = await charged((client) => {
      const form = new FormData();
      form.append("purpose", "batch");
      form.append("file", new Blob(["{}\n"], { type: "application/jsonl" }), "batch.jsonl");
      return proxyRequest("/v1/files", { method: "POST", body: form, headers: client.headers });
    });
    expect(result).toMatchObject({ spent: 0, reserved: 0 });
  });
});

describe("what a stream is charged", () => {
  it("its usage, read from the chunk the proxy asked for and kept from a client that did not ask", async () => {
    const sse = controllableSse({ "x-request-id": "req_stream_injected" });
    const upstream = mockUpstream(() => sse.response);
    const client = newClient();
    const { response, settled } = await call(
      postJson("/v1/chat/completions", { ...CHAT, stream: true }, client.headers),
      BUDGET,
    );
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
    expect(await spentToday(client.ip)).toMatchObject({ spent: 1500, reserved: 0 });
    expect(await ledger("req_stream_injected")).toMatchObject({
      prompt_tokens: 1000,
      completion_tokens: 500,
      incomplete: 0,
    });
  });

  it("counts a stream whose path is percent-encoded like any other", async () => {
    const sse = controllableSse();
    const upstream = mockUpstream(() => sse.response);
    const { response } = await call(postJson("/v1/chat/%63ompletions", { ...CHAT, stream: true }, newClient().headers));
    expect(await upstream[0]?.json()).toMatchObject({ stream_options: { include_usage: true } });
    sse.end();
    await text(response);
  });

  it("leaves the usage chunk in place for a client that asked for it", async () => {
    const sse = controllableSse({ "x-request-id": "req_stream_asked" });
    const upstream = mockUpstream(() => sse.response);
    const raw = JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } });
    const { response, settled } = await call(postJson("/v1/chat/completions", raw, newClient().headers));
    expect(await upstream[0]?.text()).toBe(raw);
    const all = [chunk({ content: "Hi" }, { usage: null }), usageChunk, "data: [DONE]\n\n"];
    for (const part of all) sse.send(part);
    sse.end();
    expect(await text(response)).toBe(all.join(""));
    await settled();
    expect(await ledger("req_stream_asked")).toMatchObject({ total_tokens: 1500 });
  });

  it("a Responses API stream: the usage of response.completed", async () => {
    const sse = controllableSse({ "x-request-id": "req_responses" });
    mockUpstream(() => sse.response);
    const client = newClient();
    const pending = call(
      postJson("/v1/responses", { model: "gpt-4o", input: "hi", stream: true }, client.headers),
      BUDGET,
    );
    const usage = { input_tokens: 40, output_tokens: 2, total_tokens: 42 };
    sse.send(
      `event: response.output_text.delta\ndata: ${JSON.stringify({ type: "response.output_text.delta", delta: "Hi" })}\n\n`,
    );
    sse.send(
      `event: response.completed\ndata: ${JSON.stringify({ type: "response.completed", response: { id: "r", usage } })}\n\n`,
    );
    sse.end();
    const { response, settled } = await pending;
    await text(response);
    await settled();
    expect(await spentToday(client.ip)).toMatchObject({ spent: 42, reserved: 0 });
    expect(await ledger("req_responses")).toMatchObject({ prompt_tokens: 40, completion_tokens: 2, incomplete: 0 });
  });

  it.each([
    ["cut by upstream", "cut"],
    ["left by the client", "cancelled"],
  ] as const)("%s before its usage: an estimate, marked incomplete", async (_, ending) => {
    const sse = controllableSse({ "x-request-id": `req_${ending}` });
    mockUpstream(() => sse.response);
    const client = newClient();
    const { request, leave } = leavable(postJson("/v1/chat/completions", { ...CHAT, stream: true }, client.headers));
    const { response, settled } = await call(request, BUDGET);
    sse.send(chunk({ content: "Hel" }, { usage: null }));
    const reader = response.body?.getReader();
    await reader?.read();
    if (ending === "cut") {
      sse.fail(new Error("connection reset"));
      while (!(await reader?.read())?.done) {}
    } else {
      await reader?.cancel();
      leave();
    }
    await settled();
    // Its input (likely for a cut, at most for a client that left), and one token for the one content event seen.
    const bytes = JSON.stringify({ ...CHAT, stream: true }).length;
    const estimate = (ending === "cut" ? Math.ceil(bytes / 4) : bytes) + 1;
    expect(await spentToday(client.ip)).toMatchObject({ spent: estimate, reserved: 0 });
    expect(await ledger(`req_${ending}`)).toMatchObject({ incomplete: 1, basis: "estimate", total_tokens: estimate });
    expect(requestLogs().at(-1)).toMatchObject({ incomplete: true, basis: "estimate", outcome: ending });
  });

  it("stalled by upstream: the estimate, marked incomplete", async () => {
    const sse = controllableSse();
    mockUpstream(() => sse.response);
    const client = newClient();
    const { response, settled } = await call(
      postJson("/v1/chat/completions", { ...CHAT, stream: true }, client.headers),
      {
        ...BUDGET,
        STREAM_IDLE_TIMEOUT_MS: "50",
      },
    );
    sse.send(chunk({ content: "Hi" }, { usage: null }));
    expect(await text(response)).toContain("upstream_stalled");
    await settled();
    const estimate = Math.ceil(JSON.stringify({ ...CHAT, stream: true }).length / 4) + 1;
    expect(await spentToday(client.ip)).toMatchObject({ spent: estimate, reserved: 0 });
    expect(requestLogs().at(-1)).toMatchObject({ basis: "estimate", outcome: "stalled" });
  });

  it("complete but without usage (an upstream that ignores stream_options): the estimate", async () => {
    const sse = controllableSse();
    mockUpstream(() => sse.response);
    const client = newClient();
    const pending = call(postJson("/v1/chat/completions", { ...CHAT, stream: true }, client.headers), BUDGET);
    for (const word of ["a", "b", "c"]) sse.send(chunk({ content: word }));
    sse.send("data: [DONE]\n\n");
    sse.end();
    const { response, settled } = await pending;
    await text(response);
    await settled();
    const estimate = Math.ceil(JSON.stringify({ ...CHAT, stream: true }).length / 4) + 3;
    expect(await spentToday(client.ip)).toMatchObject({ spent: estimate, reserved: 0 });
  });
});

describe("what a request is charged when nothing can be known: its reservation, marked incomplete", () => {
  it("upstream received it and sent nothing in time (504)", async () => {
    mockUpstream(
      (request) =>
        new Promise((_, reject) => request.signal.addEventListener("abort", () => reject(new Error("aborted")))),
    );
    const result = await charged((client) => postJson("/v1/chat/completions", CHAT, client.headers), {
      UPSTREAM_TIMEOUT_MS: "30",
    });
    expect(result.response.status).toBe(504);
    expect(result).toMatchObject({ spent: CHAT_RESERVATION, reserved: 0 });
    expect(result.log).toMatchObject({ basis: "reservation", incomplete: true, outcome: "timeout" });
  });

  it("the client went away before upstream's answer", async () => {
    const client = newClient();
    const abort = new AbortController();
    mockUpstream((request) => {
      const answer = new Promise<Response>((_, reject) =>
        request.signal.addEventListener("abort", () => reject(new Error("aborted"))),
      );
      abort.abort();
      return answer;
    });
    const request = new Request(postJson("/v1/chat/completions", CHAT, client.headers), { signal: abort.signal });
    const { settled } = await call(request, BUDGET);
    await settled();
    expect(await spentToday(client.ip)).toMatchObject({ spent: CHAT_RESERVATION, reserved: 0 });
    expect(requestLogs().at(-1)).toMatchObject({ basis: "reservation", outcome: "client_closed" });
  });

  it("an answer from a token-billed endpoint without usage", async () => {
    mockUpstream(() => openaiJson({ id: "x", choices: [] }));
    const result = await charged((client) => postJson("/v1/chat/completions", CHAT, client.headers));
    expect(result).toMatchObject({ spent: CHAT_RESERVATION, reserved: 0 });
    expect(result.log).toMatchObject({ basis: "reservation", incomplete: true });
  });

  it("speech, whose binary answer reports nothing", async () => {
    mockUpstream(() => new Response(new Uint8Array(64), { headers: { "content-type": "audio/mpeg" } }));
    const body = { model: "gpt-4o-mini-tts", input: "Hello there", voice: "alloy" };
    const result = await charged((client) => postJson("/v1/audio/speech", body, client.headers));
    // Its input at most (a token a byte), and two speech tokens a byte of it (256 at least).
    const bytes = JSON.stringify(body).length;
    expect(result.spent).toBe(bytes + Math.max(256, 2 * bytes));
  });
});

describe("daily token budgets", () => {
  it("refuses a client that has spent its budget with 429 insufficient_quota until the next UTC day", async () => {
    mockUpstream(() => openaiJson({ usage: { prompt_tokens: 600, completion_tokens: 300, total_tokens: 900 } }));
    const client = newClient();
    const vars = { DAILY_TOKEN_BUDGET: "1000" };
    const first = await call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 100 }, client.headers), vars);
    expect(first.response.status).toBe(200);
    await text(first.response);
    await first.settled();
    const second = await call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 100 }, client.headers), vars);
    expect(second.response.status).toBe(429);
    const retryAfter = Number(second.response.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    const body = await json<{ error: { type: string; code: string; message: string } }>(second.response);
    expect(body.error).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });
    expect(body.error.message).toContain("has 100 of its 1000 daily tokens left");
  });

  it("reserves a request's own output cap as asked, with no cap of its own invented", async () => {
    const upstream = mockUpstream(() =>
      openaiJson({ usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }),
    );
    const big = { ...CHAT, max_tokens: 8000 };
    const admitted = await call(postJson("/v1/chat/completions", big, newClient().headers), {
      DAILY_TOKEN_BUDGET: "10000",
    });
    expect(admitted.response.status).toBe(200);
    expect(await upstream[0]?.json()).toEqual(big);
    const refused = await call(postJson("/v1/chat/completions", big, newClient().headers), {
      DAILY_TOKEN_BUDGET: "5000",
    });
    expect(refused.response.status).toBe(429);
    expect(await json(refused.response)).toMatchObject({
      error: { code: "insufficient_quota", message: expect.stringContaining("has 5000 of its 5000 daily tokens left") },
    });
  });

  it("sends a request without an output cap with the one it reserved", async () => {
    const upstream = mockUpstream(() =>
      openaiJson({ usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }),
    );
    await call(postJson("/v1/chat/completions", CHAT, newClient().headers), { DAILY_TOKEN_BUDGET: "100000" });
    expect(await upstream[0]?.json()).toMatchObject({ max_tokens: DEFAULT_OUTPUT_RESERVATION });
  });

  it("admits only the reservations that fit under 50 concurrent requests", async () => {
    const body = { ...CHAT, max_tokens: 1000 };
    const input = Math.ceil(JSON.stringify(body).length / 4);
    // Each spends all it reserved, so however admissions and settlements interleave, four fit and a fifth never does.
    const upstream = mockUpstream(() =>
      openaiJson({ usage: { prompt_tokens: input, completion_tokens: 1000, total_tokens: input + 1000 } }),
    );
    const client = newClient();
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        call(postJson("/v1/chat/completions", body, client.headers), { DAILY_TOKEN_BUDGET: "5000" }),
      ),
    );
    const admitted = results.filter((r) => r.response.status === 200).length;
    // Each reserves 1 000 output tokens plus its input: four fit in 5 000, a fifth does not.
    expect(admitted).toBe(4);
    expect(upstream).toHaveLength(4);
    await Promise.all(results.map((r) => r.settled()));
    expect(await spentToday(client.ip)).toMatchObject({ spent: 4 * (input + 1000), reserved: 0 });
  });

  it("refuses the next image once the images spent the budget", async () => {
    const usage = {
      total_tokens: 4210,
      input_tokens: 50,
      output_tokens: 4160,
      input_tokens_details: { text_tokens: 50, image_tokens: 0 },
    };
    mockUpstream(() => openaiJson({ created: 1, data: [{ b64_json: "iVBOR" }], usage }));
    const client = newClient();
    const body = { model: "gpt-image-1", prompt: "a cat", size: "1024x1024", quality: "high" };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { response, settled } = await call(postJson("/v1/images/generations", body, client.headers), {
        DAILY_TOKEN_BUDGET: "10000",
      });
      statuses.push(response.status);
      await text(response);
      await settled();
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect((await spentToday(client.ip)).spent).toBe(8420);
  });
});

describe("the day's spend", () => {
  const KINDS = [
    "allowed",
    "refused-model",
    "refused-path",
    "bad-json",
    "upstream-500",
    "upstream-429",
    "unreachable",
    "stream",
  ] as const;

  it("equals the sum of upstream-reported usage, whatever mix of refused and allowed requests", async () => {
    const request = fc.record({
      kind: fc.constantFrom(...KINDS),
      prompt: fc.integer({ min: 1, max: 5000 }),
      completion: fc.integer({ min: 0, max: 2000 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 8 }), async (requests) => {
        const client = newClient();
        const before = (await spentToday(client.ip)).spent;
        let expected = 0;
        for (const { kind, prompt, completion } of requests) {
          const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
          mockUpstream(() => {
            if (kind === "unreachable") throw new TypeError("fetch failed");
            if (kind === "upstream-500" || kind === "upstream-429") {
              return openaiJson(
                { error: { message: "no", type: "server_error" } },
                kind === "upstream-500" ? 500 : 429,
              );
            }
            if (kind === "stream") {
              const chunkWithUsage = `data: ${JSON.stringify({ choices: [], usage })}\n\n`;
              return new Response(`${chunk({ content: "x" })}${chunkWithUsage}data: [DONE]\n\n`, {
                headers: { "content-type": "text/event-stream" },
              });
            }
            return openaiJson({ usage });
          });
          const body =
            kind === "refused-model"
              ? { ...CHAT, model: "gpt-4o" }
              : kind === "bad-json"
                ? "{oops"
                : kind === "stream"
                  ? { ...CHAT, stream: true }
                  : CHAT;
          const path = kind === "refused-path" ? "/v1/embeddings" : "/v1/chat/completions";
          const { response, settled } = await call(postJson(path, body, client.headers), {
            DAILY_TOKEN_BUDGET: "100000000",
            // Each settlement waits for its slice to come back: short slices keep the test short.
            SPEND_LEASE_SECONDS: "0.02",
            ALLOWED_MODELS: "gpt-4o-mini",
            ALLOWED_PATHS: "/v1/chat/completions",
          });
          await text(response);
          await settled();
          if (kind === "allowed" || kind === "stream") expected += prompt + completion;
        }
        const after = await spentToday(client.ip);
        expect(after.reserved).toBe(0);
        expect(after.spent - before).toBe(expected);
      }),
      { numRuns: 15 },
    );
  });
});

describe("records without a budget", () => {
  it("writes no record with RECORD_USAGE=false, and still logs the usage", async () => {
    mockUpstream(() => openaiJson({ usage: USAGE }, 200, { "x-request-id": "req_not_recorded" }));
    const { response, settled } = await call(postJson("/v1/chat/completions", CHAT, newClient().headers), {
      RECORD_USAGE: "false",
    });
    await text(response);
    await settled();
    expect(await ledger("req_not_recorded")).toBeUndefined();
    expect(requestLogs()[0]).toMatchObject({ promptTokens: 1000 });
  });

  it("records an unknown model at the fallback price, marked estimated, and names it in the log once", async () => {
    mockUpstream(() => openaiJson({ usage: USAGE }, 200, { "x-request-id": "req_unknown_model" }));
    const model = `my-finetune-${crypto.randomUUID().slice(0, 8)}`;
    for (let i = 0; i < 2; i++) {
      const { response, settled } = await call(
        postJson("/v1/chat/completions", { ...CHAT, model }, newClient().headers),
      );
      await text(response);
      await settled();
    }
    const fallback = costUsd(TABLE_FALLBACK_PRICE, {
      ...plainUsage(USAGE.prompt_tokens, USAGE.completion_tokens),
      cachedTokens: 200,
      reasoningTokens: 100,
    });
    const row = await ledger("req_unknown_model");
    expect(row).toMatchObject({ prompt_tokens: 1000, cost_estimated: 1 });
    expect(row?.cost_usd).toBeCloseTo(fallback, 10);
    expect(requestLogs().at(-1)).toMatchObject({ model, costEstimated: true });
    const warnings = logged.filter((line) => line.includes(model) && line.includes("MODEL_PRICES"));
    expect(warnings).toHaveLength(1);
  });

  it("records a refused request with nothing spent, and no cost", async () => {
    const { response, settled } = await call(
      postJson("/v1/chat/completions", { ...CHAT, model: "gpt-4o" }, newClient().headers),
      { ALLOWED_MODELS: "gpt-4o-mini" },
    );
    const requestId = response.headers.get("x-request-id") ?? "";
    await text(response);
    await settled();
    expect(await ledger(requestId)).toMatchObject({ status: 403, total_tokens: 0, cost_usd: 0, basis: "none" });
  });
});
