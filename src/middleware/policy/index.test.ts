import { describe, expect, it } from "vitest";
import { call, json, mockUpstream, openaiJson, postJson, proxyRequest, requestLogs, text } from "../../testing";

describe("the output cap the proxy sets", () => {
  it.each([
    ["/v1/chat/completions", "gpt-4o-mini", "max_tokens"],
    ["/v1/chat/completions", "o3-mini", "max_completion_tokens"],
    ["/v1/chat/completions", "gpt-5", "max_completion_tokens"],
    ["/v1/chat/completions", "ft:o4-mini-2025-04-16:org::abc", "max_completion_tokens"],
    ["/v1/responses", "gpt-4o", "max_output_tokens"],
    ["/v1/completions", "gpt-3.5-turbo-instruct", "max_tokens"],
  ])("goes on %s for %s in %s", async (path, model, field) => {
    const upstream = mockUpstream(() => openaiJson({}));
    await call(postJson(path, { model, messages: [] }), { MAX_OUTPUT_TOKENS: "500" });
    expect(await upstream[0]?.json()).toEqual({ [field]: 500, model, messages: [] });
  });

  it.each(["max_tokens", "max_completion_tokens", "max_output_tokens"])(
    "refuses %s over MAX_OUTPUT_TOKENS, naming the cap",
    async (field) => {
      const upstream = mockUpstream(() => openaiJson({}));
      const { response } = await call(postJson("/v1/chat/completions", { model: "m", [field]: 501 }), {
        MAX_OUTPUT_TOKENS: "500",
      });
      expect(response.status).toBe(400);
      expect(await json(response)).toMatchObject({ error: { code: "max_tokens_over_cap", param: field } });
      expect(upstream).toHaveLength(0);
    },
  );

  it("does not touch endpoints that generate no text", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const raw = '{"model":"text-embedding-3-small","input":"x"}';
    await call(postJson("/v1/embeddings", raw), { MAX_OUTPUT_TOKENS: "500" });
    expect(await upstream[0]?.text()).toBe(raw);
  });

  it("sets none without MAX_OUTPUT_TOKENS or a budget", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const raw = '{"model":"gpt-4o-mini","messages":[]}';
    await call(postJson("/v1/chat/completions", raw));
    expect(await upstream[0]?.text()).toBe(raw);
  });
});

describe("the output cap the proxy sends while spending is limited", () => {
  it.each([
    ["a token budget", { DAILY_TOKEN_BUDGET: "1000000" }],
    ["a dollar budget", { DAILY_BUDGET_USD: "5" }],
    ["the spend ceiling alone", { DAILY_SPEND_LIMIT_USD: "10" }],
  ])("is the model's default under %s: 4096, or 32768 for a reasoning model", async (_, vars) => {
    const upstream = mockUpstream(() => openaiJson({}));
    await call(postJson("/v1/chat/completions", { model: "gpt-4o-mini", messages: [] }), vars);
    await call(postJson("/v1/responses", { model: "o4-mini", input: "hi" }), vars);
    expect(await upstream[0]?.json()).toMatchObject({ max_tokens: 4096 });
    expect(await upstream[1]?.json()).toMatchObject({ max_output_tokens: 32_768 });
  });

  it("leaves a request's own cap as asked, however large", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const raw = '{"model":"gpt-4o-mini","messages":[],"max_tokens":16000}';
    await call(postJson("/v1/chat/completions", raw), { DAILY_SPEND_LIMIT_USD: "10" });
    expect(await upstream[0]?.text()).toBe(raw);
  });
});

describe("POSTs whose spend the proxy cannot see, while spending is limited", () => {
  it.each([
    ["/v1/realtime/client_secrets", "mints a key"],
    ["/v1/realtime/calls", "opens a call"],
    ["/v1/batches", "cannot see it"],
    ["/v1/fine_tuning/jobs", "cannot see it"],
    ["/v1/threads/thread_1/runs", "cannot see it"],
    ["/v1/some/future/endpoint", "cannot see it"],
  ])("refuses %s with 403 saying why and what the operator can do", async (path, why) => {
    const upstream = mockUpstream(() => openaiJson({}));
    for (const vars of [{ DAILY_BUDGET_USD: "1" }, { DAILY_SPEND_LIMIT_USD: "10" }]) {
      const { response } = await call(postJson(path, {}), vars);
      expect(response.status).toBe(403);
      const body = await json<{ error: { code: string; message: string } }>(response);
      expect(body.error.code).toBe("path_not_allowed");
      expect(body.error.message).toContain(why);
      expect(body.error.message).toContain("ALLOWED_PATHS");
    }
    expect(upstream).toHaveLength(0);
  });

  it("lets through what bills nothing, what ALLOWED_PATHS names, and everything without a limit", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const limited = { DAILY_SPEND_LIMIT_USD: "10" };
    expect((await call(postJson("/v1/moderations", { input: "x" }), limited)).response.status).toBe(200);
    expect((await call(postJson("/v1/responses/resp_1/cancel", {}), limited)).response.status).toBe(200);
    const named = { ...limited, ALLOWED_PATHS: "/v1/batches" };
    expect((await call(postJson("/v1/batches", {}), named)).response.status).toBe(200);
    expect((await call(postJson("/v1/batches", {}))).response.status).toBe(200);
    expect(upstream).toHaveLength(4);
  });
});

describe("hosted tools billed per call, while spending is limited", () => {
  it.each([
    [
      "a web search tool",
      { model: "gpt-4.1", input: "news?", tools: [{ type: "web_search_preview" }] },
      "/v1/responses",
    ],
    [
      "a code interpreter",
      { model: "gpt-4.1", input: "x", tools: [{ type: "code_interpreter", container: { type: "auto" } }] },
      "/v1/responses",
    ],
    ["a search model", { model: "gpt-4o-search-preview", messages: [] }, "/v1/chat/completions"],
    ["web_search_options", { model: "gpt-4o-mini", messages: [], web_search_options: {} }, "/v1/chat/completions"],
  ])("refuses %s with 403 naming it, unless ALLOWED_HOSTED_TOOLS does", async (_, body, path) => {
    const upstream = mockUpstream(() => openaiJson({}));
    const limited = { DAILY_SPEND_LIMIT_USD: "10" };
    const { response } = await call(postJson(path, body), limited);
    expect(response.status).toBe(403);
    expect(await json(response)).toMatchObject({
      error: { code: "tool_not_allowed", message: expect.stringContaining("ALLOWED_HOSTED_TOOLS") },
    });
    const allowed = await call(postJson(path, body), {
      ...limited,
      ALLOWED_HOSTED_TOOLS: "web_search,code_interpreter",
    });
    expect(allowed.response.status).toBe(200);
    // Without any limit, nothing is refused.
    expect((await call(postJson(path, body))).response.status).toBe(200);
    expect(upstream).toHaveLength(2);
  });

  it("lets function tools through: the client runs them", async () => {
    mockUpstream(() => openaiJson({}));
    const body = { model: "gpt-4o-mini", messages: [], tools: [{ type: "function", function: { name: "f" } }] };
    expect((await call(postJson("/v1/chat/completions", body), { DAILY_SPEND_LIMIT_USD: "10" })).response.status).toBe(
      200,
    );
  });
});

describe("what a request reserves", () => {
  it("reserves each prompt of a legacy completions list its own choices", async () => {
    mockUpstream(() => openaiJson({}));
    const body = { model: "gpt-3.5-turbo-instruct", prompt: ["a", "b", "c"], n: 2, max_tokens: 100 };
    const { response } = await call(postJson("/v1/completions", body), { DAILY_TOKEN_BUDGET: "500" });
    // 3 prompts × 2 choices × 100 tokens, and its input: over a budget of 500.
    expect(response.status).toBe(429);
    const bytes = JSON.stringify(body).length;
    expect((await json<{ error: { message: string } }>(response)).error.message).toContain(`reserves ${600 + bytes}`);
  });

  it("reserves a tokenized prompt (a list of numbers) once", async () => {
    mockUpstream(() => openaiJson({}));
    const body = { model: "gpt-3.5-turbo-instruct", prompt: [1, 2, 3, 4], max_tokens: 100 };
    const { response } = await call(postJson("/v1/completions", body), { DAILY_TOKEN_BUDGET: "50" });
    const bytes = JSON.stringify(body).length;
    expect((await json<{ error: { message: string } }>(response)).error.message).toContain(`reserves ${100 + bytes}`);
  });

  it("charges a cut reasoning stream its reservation: its hidden reasoning may have been billed", async () => {
    mockUpstream(
      () =>
        new Response('data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n', {
          headers: { "content-type": "text/event-stream" },
        }),
    );
    const body = {
      model: "o4-mini",
      messages: [{ role: "user", content: "think" }],
      stream: true,
      max_completion_tokens: 2000,
    };
    const { response, settled } = await call(postJson("/v1/chat/completions", body), { DAILY_TOKEN_BUDGET: "1000000" });
    await text(response);
    await settled();
    expect(requestLogs().at(-1)).toMatchObject({ basis: "reservation", completionTokens: 2000, incomplete: true });
  });
});

describe("the request body", () => {
  it("keeps every byte the client sent when nothing changes, spacing and key order included", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const raw = '{ "messages" : [ {"role":"user","content":"h\\u00e9"} ] ,\n "model":"gpt-4o-mini" }';
    await call(postJson("/v1/chat/completions", raw), { ALLOWED_MODELS: "gpt-4o-mini" });
    expect(await upstream[0]?.text()).toBe(raw);
  });

  it("changes only what it adds, keeping the rest byte for byte", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const raw = '{"model":"gpt-4o-mini", "messages":[], "stream":true, "stream_options":{"other":1}}';
    await call(postJson("/v1/chat/completions", raw), { MAX_OUTPUT_TOKENS: "64" });
    expect(await upstream[0]?.text()).toBe(
      '{"max_tokens":64,"model":"gpt-4o-mini", "messages":[], "stream":true, "stream_options":{"other":1,"include_usage":true}}',
    );
  });

  it("reads a model written with escapes as upstream will", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(postJson("/v1/chat/completions", '{"mod\\u0065l":"gpt-4\\u006f","messages":[]}'), {
      ALLOWED_MODELS: "gpt-4o-mini",
    });
    expect(response.status).toBe(403);
    expect(await json(response)).toMatchObject({
      error: { code: "model_not_allowed", message: expect.stringContaining("gpt-4o") },
    });
    expect(upstream).toHaveLength(0);
  });

  it("refuses a body that names the model twice, since parsers disagree on which one counts", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(postJson("/v1/chat/completions", '{"model":"gpt-4o-mini","model":"o1"}'));
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: "invalid_json", param: "model" } });
    expect(upstream).toHaveLength(0);
  });

  it.each([
    ["not JSON", "{oops"],
    ["a JSON array", "[1]"],
    ["JSON with a comment", '{"model":"gpt-4o-mini" /* "o1" */}'],
    ["JSON with a trailing comma", '{"model":"gpt-4o-mini",}'],
  ])("refuses %s on an endpoint that bills tokens, without calling upstream", async (_, raw) => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(postJson("/v1/chat/completions", raw));
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: "invalid_json" } });
    expect(upstream).toHaveLength(0);
  });

  it("reads the model whatever media type the body claims, so no type slips past the rules", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "Application/JSON"]) {
      const { response } = await call(
        postJson("/v1/chat/completions", { model: "gpt-4o", messages: [] }, { "content-type": type }),
        { ALLOWED_MODELS: "gpt-4o-mini" },
      );
      expect(response.status, type).toBe(403);
    }
    expect(upstream).toHaveLength(0);
  });
});

describe("policy in the pipeline", () => {
  const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

  it("refuses a model outside ALLOWED_MODELS with 403, naming the model and not the list", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(postJson("/v1/chat/completions", { ...CHAT, model: "gpt-4o" }), {
      ALLOWED_MODELS: "gpt-4o-mini,gpt-4.1*",
    });
    expect(response.status).toBe(403);
    const body = await json<{ error: { message: string; code: string } }>(response);
    expect(body.error.code).toBe("model_not_allowed");
    expect(body.error.message).toContain("gpt-4o");
    expect(body.error.message).not.toContain("gpt-4.1");
    expect(upstream).toHaveLength(0);
  });

  it("reads a JSON body whatever the case of its media type", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(
      postJson("/v1/chat/completions", { ...CHAT, model: "gpt-4o" }, { "content-type": "Application/JSON" }),
      { ALLOWED_MODELS: "gpt-4o-mini" },
    );
    expect(response.status).toBe(403);
    expect(upstream).toHaveLength(0);
  });

  it("applies ALLOWED_MODELS to /v1/responses and to POST / with its default model", async () => {
    mockUpstream(() => openaiJson({}));
    const vars = { ALLOWED_MODELS: "gpt-4o-mini" };
    expect((await call(postJson("/v1/responses", { model: "o3", input: "x" }), vars)).response.status).toBe(403);
    expect((await call(postJson("/", { messages: CHAT.messages }), vars)).response.status).toBe(403);
    expect((await call(postJson("/", CHAT), vars)).response.status).toBe(200);
  });

  it("sends a request without a cap upstream with MAX_OUTPUT_TOKENS set, and others byte for byte", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const vars = { MAX_OUTPUT_TOKENS: "256" };
    await call(postJson("/v1/chat/completions", CHAT), vars);
    expect(await upstream[0]?.json()).toEqual({ ...CHAT, max_tokens: 256 });
    const raw = '{ "model": "gpt-4o-mini",  "max_tokens": 10, "messages": [] }';
    await call(postJson("/v1/chat/completions", raw), vars);
    expect(await upstream[1]?.text()).toBe(raw);
  });

  it("caps the seed route's default max_tokens", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    await call(postJson("/", CHAT), { MAX_OUTPUT_TOKENS: "256" });
    expect(await upstream[0]?.json()).toMatchObject({ max_tokens: 256 });
  });

  it("refuses a request over MAX_OUTPUT_TOKENS with 400 naming the cap", async () => {
    const { response } = await call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 9999 }), {
      MAX_OUTPUT_TOKENS: "256",
    });
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { code: "max_tokens_over_cap", param: "max_tokens" } });
  });

  it("exposes only ALLOWED_PATHS", async () => {
    mockUpstream(() => openaiJson({ data: [] }));
    const vars = { ALLOWED_PATHS: "/v1/chat/completions,/v1/models*" };
    expect((await call(proxyRequest("/v1/models"), vars)).response.status).toBe(200);
    expect((await call(proxyRequest("/v1/models/gpt-4o"), vars)).response.status).toBe(200);
    const refused = await call(proxyRequest("/v1/files"), vars);
    expect(refused.response.status).toBe(403);
    expect(await json(refused.response)).toMatchObject({ error: { code: "path_not_allowed" } });
  });
});

describe("multipart forms to endpoints that bill tokens", () => {
  function transcription(fields: Array<[string, string]>): Request {
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(3000)], { type: "audio/mpeg" }), "a.mp3");
    for (const [name, value] of fields) form.append(name, value);
    return proxyRequest("/v1/audio/transcriptions", { method: "POST", body: form });
  }

  it("applies ALLOWED_MODELS to the form's model field, wherever it comes in the form", async () => {
    const upstream = mockUpstream(() => openaiJson({ text: "hi" }));
    const vars = { ALLOWED_MODELS: "gpt-4o-mini-transcribe" };
    const refused = await call(transcription([["model", "gpt-4o-transcribe"]]), vars);
    expect(refused.response.status).toBe(403);
    expect(await json(refused.response)).toMatchObject({ error: { code: "model_not_allowed" } });
    const allowed = await call(transcription([["model", "gpt-4o-mini-transcribe"]]), vars);
    expect(allowed.response.status).toBe(200);
    expect(upstream).toHaveLength(1);
  });

  it("sends the form upstream byte for byte", async () => {
    const upstream = mockUpstream(() => openaiJson({ text: "hi" }));
    const request = transcription([["model", "gpt-4o-transcribe"]]);
    const sent = new Uint8Array(await request.clone().arrayBuffer());
    await call(request);
    expect(new Uint8Array((await upstream[0]?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(sent);
  });

  it("refuses a form that names the model twice", async () => {
    const upstream = mockUpstream(() => openaiJson({ text: "hi" }));
    const { response } = await call(
      transcription([
        ["model", "gpt-4o-mini-transcribe"],
        ["model", "gpt-4o-transcribe"],
      ]),
    );
    expect(response.status).toBe(400);
    expect(upstream).toHaveLength(0);
  });

  it("prices the request by the form's model", async () => {
    const usage = {
      type: "tokens",
      input_tokens: 1010,
      input_token_details: { audio_tokens: 1000, text_tokens: 10 },
      output_tokens: 5,
      total_tokens: 1015,
    };
    mockUpstream(() => openaiJson({ text: "hi", usage }));
    const { response, settled } = await call(transcription([["model", "gpt-4o-transcribe"]]));
    await text(response);
    await settled();
    expect(requestLogs().at(-1)).toMatchObject({ model: "gpt-4o-transcribe", promptTokens: 1010 });
    expect(requestLogs().at(-1)?.costUsd).toBeCloseTo((10 * 2.5 + 1000 * 6 + 5 * 10) / 1e6, 12);
  });
});
