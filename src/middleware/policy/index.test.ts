import { describe, expect, it } from "vitest";
import { call, json, mockUpstream, openaiJson, postJson, proxyRequest } from "../../testing";
import { capOutput, compilePatterns, matchesAny } from ".";

describe("compilePatterns", () => {
  const patterns = compilePatterns("gpt-4o-mini, gpt-4.1*") ?? [];

  it.each([
    ["gpt-4o-mini", true],
    ["gpt-4.1", true],
    ["gpt-4.1-mini", true],
    ["gpt-4o", false],
    ["gpt-4o-mini-2024", false],
    ["gpt-4x1", false],
  ])("%s → %s", (model, expected) => {
    expect(matchesAny(patterns, model)).toBe(expected);
  });

  it("means no restriction when empty", () => {
    expect(compilePatterns("")).toBeNull();
    expect(compilePatterns(undefined)).toBeNull();
  });
});

describe("capOutput", () => {
  it.each([
    ["/chat/completions", "gpt-4o-mini", "max_tokens"],
    ["/chat/completions", "o3-mini", "max_completion_tokens"],
    ["/chat/completions", "gpt-5", "max_completion_tokens"],
    ["/chat/completions", "ft:o4-mini-2025-04-16:org::abc", "max_completion_tokens"],
    ["/responses", "gpt-4o", "max_output_tokens"],
    ["/completions", "gpt-3.5-turbo-instruct", "max_tokens"],
  ])("sets the cap on %s for %s in %s", (path, model, field) => {
    const body: Record<string, unknown> = { model };
    expect(capOutput(body, path, 500)).toBe(true);
    expect(body).toEqual({ model, [field]: 500 });
  });

  it("leaves a request within the cap unchanged", () => {
    const body = { model: "gpt-4o", max_tokens: 100 };
    expect(capOutput(body, "/chat/completions", 500)).toBe(false);
    expect(body).toEqual({ model: "gpt-4o", max_tokens: 100 });
  });

  it.each(["max_tokens", "max_completion_tokens", "max_output_tokens"])(
    "refuses %s over the cap, naming the cap",
    (field) => {
      expect(() => capOutput({ [field]: 501 }, "/chat/completions", 500)).toThrow(/cap of 500/);
    },
  );

  it("does not touch endpoints that generate no text", () => {
    const body = { model: "text-embedding-3-small", input: "x" };
    expect(capOutput(body, "/embeddings", 500)).toBe(false);
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
