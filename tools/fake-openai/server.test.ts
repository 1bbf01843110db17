// Proves the fake upstream itself behaves like OpenAI, using the official SDK. Plain Node environment.
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FakeOpenAI, startFakeOpenAI } from "./server.js";

let fake: FakeOpenAI;
let client: OpenAI;
const auth = { authorization: "Bearer sk-test" };

beforeAll(async () => {
  fake = await startFakeOpenAI();
  client = new OpenAI({ baseURL: fake.url, apiKey: "sk-test", maxRetries: 0 });
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

describe("OpenAI routes", () => {
  it("answers a chat completion deterministically, with OpenAI headers", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi there" }] })
      .withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.choices[0]?.message).toMatchObject({
      role: "assistant",
      content: "Hello! You said: hi there",
      refusal: null,
    });
    expect(data.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 });
    expect(response.headers.get("x-request-id")).toBe(fake.requests[0]?.id);
    expect(response.headers.get("set-cookie")).toContain("__cf_bm=fake");
    expect(response.headers.get("openai-organization")).toBe("org-fake");
    expect(fake.requests[0]?.json).toMatchObject({ model: "gpt-4o-mini" });
  });

  it("streams chat word by word with include_usage", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: [{ type: "text", text: "one two" }] },
      ],
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe("Hello! You said: one two");
    expect(chunks).toHaveLength(1 + 5 + 1 + 1); // role, words, finish, usage
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 4 + 6, completion_tokens: 5 } });
  });

  it("calls a tool when asked about the weather", async () => {
    const tools = [{ type: "function" as const, function: { name: "get_weather", parameters: {} } }];
    const messages = [{ role: "user" as const, content: "weather in Paris?" }];
    const done = await client.chat.completions.create({ model: "gpt-4o", tools, messages });
    expect(done.choices[0]?.finish_reason).toBe("tool_calls");
    expect(done.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      type: "function",
      function: { name: "get_weather", arguments: '{"location":"Paris"}' },
    });
    const stream = client.chat.completions.stream({ model: "gpt-4o", tools, messages });
    const final = await stream.finalChatCompletion();
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      function: { arguments: '{"location":"Paris"}' },
    });
  });

  it("returns embeddings as base64 by default (decoded by the SDK) and as floats on request", async () => {
    const b64 = await client.embeddings.create({ model: "text-embedding-3-small", input: "hello" });
    const floats = await client.embeddings.create({
      model: "text-embedding-3-small",
      input: "hello",
      encoding_format: "float",
    });
    expect(fake.requests[0]?.json).toMatchObject({ encoding_format: "base64" });
    expect(b64.data[0]?.embedding).toHaveLength(8);
    expect(b64.data[0]?.embedding).toEqual(floats.data[0]?.embedding);
  });

  it("lists and retrieves models; unknown model is model_not_found", async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(
      expect.arrayContaining(["gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo", "o3-mini", "text-embedding-3-small"]),
    );
    await expect(client.models.retrieve("nope")).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("streams the Responses API with sequence numbers", async () => {
    const events = [];
    for await (const e of await client.responses.create({ model: "gpt-4o", input: "hey", stream: true }))
      events.push(e);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events[0]?.type).toBe("response.created");
    const last = events.at(-1);
    expect(last?.type === "response.completed" && last.response.usage?.total_tokens).toBe(4 + 4);
    const plain = await client.responses.create({ model: "gpt-4o", input: "hey" });
    expect(plain.output_text).toBe("Hello! You said: hey");
  });

  it("handles audio, files, moderations, images and the legacy completions", async () => {
    const file = await toFile(Buffer.alloc(1234, 7), "a.mp3");
    expect((await client.audio.transcriptions.create({ file, model: "whisper-1" })).text).toBe(
      "transcribed 1234 bytes",
    );
    const speech = await client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "hi" });
    expect(speech.headers.get("content-type")).toBe("audio/mpeg");
    expect((await speech.arrayBuffer()).byteLength).toBe(4096);
    expect(await client.files.delete("file-x")).toEqual({ id: "file-x", object: "file", deleted: true });
    expect((await client.moderations.create({ input: "I will kill it" })).results[0]?.categories.violence).toBe(true);
    expect((await client.images.generate({ prompt: "a cat" })).data?.[0]?.b64_json).toMatch(/^iVBOR/);
    const legacy = await client.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: "yo" });
    expect(legacy.choices[0]?.text).toBe("Hello! You said: yo");
  });

  it("echoes bytes, query and headers; unknown paths are OpenAI-shaped 404s", async () => {
    const body = Buffer.from([0, 1, 2, 255]);
    const res = await fetch(`${fake.url}/echo?b=2&a=%20`, {
      method: "POST",
      headers: { ...auth, "x-custom": "yes" },
      body,
    });
    expect(await res.json()).toMatchObject({
      method: "POST",
      path: "/v1/echo",
      query: "b=2&a=%20",
      headers: { "x-custom": "yes" },
      bodyBase64: "AAEC/w==",
    });
    const missing = await fetch(`${fake.url}/nope`, { headers: auth });
    expect([missing.status, await missing.json()]).toEqual([
      404,
      { error: { message: "Invalid URL (GET /v1/nope)", type: "invalid_request_error", param: null, code: null } },
    ]);
  });

  it("rejects missing and wrong keys (and records them)", async () => {
    const res = await fetch(`${fake.url}/models`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /^You didn't provide an API key/,
    );
    const wrong = new OpenAI({ baseURL: fake.url, apiKey: "sk-wrong", maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toMatchObject({
      status: 401,
      code: "invalid_api_key",
      message: expect.stringContaining("sk-wrong"),
    });
    expect(fake.requests).toHaveLength(2);
  });

  it("validates chat bodies", async () => {
    const post = (body: string) => fetch(`${fake.url}/chat/completions`, { method: "POST", headers: auth, body });
    expect((await post("{nope")).status).toBe(400);
    expect(await (await post('{"model":"m"}')).json()).toMatchObject({
      error: { param: "messages", type: "invalid_request_error" },
    });
  });

  it("serves the control endpoints", async () => {
    await client.models.list();
    const root = fake.url.replace(/\/v1$/, "");
    const listed = (await (await fetch(`${root}/__fake/requests`)).json()) as Array<{
      path: string;
      bodyBase64: string;
    }>;
    expect(listed).toEqual([expect.objectContaining({ path: "/v1/models", bodyBase64: "" })]);
    await fetch(`${root}/__fake/reset`, { method: "POST" });
    expect(fake.requests).toHaveLength(0);
  });
});

describe("faults", () => {
  const chat = (model: string, opts: OpenAI.RequestOptions = {}) =>
    client.chat.completions.create({ model, messages: [{ role: "user", content: "a b c d e" }] }, opts);

  it.each([
    ["fault-429", 429, "rate_limit_exceeded", "requests"],
    ["fault-500", 500, null, "server_error"],
    ["fault-503", 503, null, "server_error"],
    ["fault-400", 400, "invalid_value", "invalid_request_error"],
  ])("%s by model", async (model, status, code, type) => {
    await expect(chat(model)).rejects.toMatchObject({ status, code, type });
  });

  it("fault-429 carries retry-after headers; faults also work by header on any path", async () => {
    const res = await fetch(`${fake.url}/models`, { headers: { ...auth, "x-fake-fault": "fault-429" } });
    expect([res.status, res.headers.get("retry-after"), res.headers.get("retry-after-ms")]).toEqual([429, "2", "2000"]);
  });

  it("fault-redirect is a 307 to a local black hole", async () => {
    const res = await fetch(`${fake.url}/models`, {
      headers: { ...auth, "x-fake-fault": "fault-redirect" },
      redirect: "manual",
    });
    expect([res.status, res.headers.get("location")]).toEqual([307, "http://127.0.0.1:1/evil"]);
  });

  it("fault-slow-first-byte delays the headers", async () => {
    const started = Date.now();
    await chat("fault-slow-first-byte", { headers: { "x-fake-delay-ms": "150" } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it("fault-stall sends two chunks then hangs; the client abort is detected", async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "fault-stall", stream: true, messages: [{ role: "user", content: "x" }] },
      { signal: controller.signal },
    );
    let seen = 0;
    // the SDK ends the iteration quietly when its signal aborts
    for await (const _ of stream) if (++seen === 2) setTimeout(() => controller.abort(), 50);
    expect(seen).toBe(2);
    const rec = await fake.waitForClose(fake.requests[0]?.id ?? "", 1000);
    expect(rec.clientClosedEarly).toBe(true);
  });

  it("fault-reset drops the connection mid-stream", async () => {
    const stream = await client.chat.completions.create({ model: "fault-reset", stream: true, messages: [] });
    let seen = 0;
    await expect(
      (async () => {
        for await (const _ of stream) seen++;
      })(),
    ).rejects.toThrow();
    expect(seen).toBe(3);
    const rec = await fake.waitForClose(fake.requests[0]?.id ?? "", 1000);
    expect([rec.clientClosedEarly, rec.finishedAt]).toEqual([false, undefined]);
  });
});

describe("lifecycle", () => {
  it("honours the chunks option and waitForRequest times out clearly", async () => {
    const custom = await startFakeOpenAI({ chunks: 7, chunkGapMs: 1 });
    try {
      const sdk = new OpenAI({ baseURL: custom.url, apiKey: "sk-test", maxRetries: 0 });
      const stream = await sdk.chat.completions.create({
        model: "m",
        stream: true,
        messages: [{ role: "user", content: "x" }],
      });
      const deltas = [];
      for await (const c of stream)
        if (c.choices[0]?.delta.content !== undefined) deltas.push(c.choices[0].delta.content);
      expect(deltas.slice(1)).toHaveLength(7); // after the role chunk
      await expect(custom.waitForRequest((r) => r.method === "PUT", 30)).rejects.toThrow(/waitForRequest.*30 ms/);
    } finally {
      await custom.close();
    }
  });

  it("close() ends stalled streams and their timers promptly", async () => {
    const custom = await startFakeOpenAI({ ttftMs: 10_000 });
    const res = fetch(`${custom.url}/chat/completions`, {
      method: "POST",
      headers: auth,
      body: '{"model":"m","messages":[],"stream":true}',
    })
      .then((r) => r.text())
      .catch((e: unknown) => e);
    await custom.waitForRequest(() => true, 1000);
    const started = Date.now();
    await custom.close();
    expect(Date.now() - started).toBeLessThan(200);
    expect(await res).toBeInstanceOf(Error);
  });
});

describe("fake-openai as Azure OpenAI, and its faults by key and on demand", () => {
  let azure: FakeOpenAI;
  beforeAll(async () => {
    azure = await startFakeOpenAI({ azure: true, keyFaults: { "az-limited": "fault-429" } });
  });
  afterAll(() => azure.close());
  const base = () => azure.url.replace(/\/v1$/, "");
  const chat = (path: string, key = "az-key") =>
    fetch(`${base()}${path}`, {
      method: "POST",
      headers: { "api-key": key, "content-type": "application/json" },
      body: '{"messages":[{"role":"user","content":"hi"}]}',
    });

  it("serves a deployment path with an api-version, its deployment standing for the model", async () => {
    const response = await chat("/openai/deployments/mini/chat/completions?api-version=2024-10-21");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      model: "mini",
      choices: [{ message: { content: "Hello! You said: hi" } }],
    });
    expect(azure.requests.at(-1)?.path).toBe("/openai/deployments/mini/chat/completions?api-version=2024-10-21");
    expect((await chat("/openai/v1/chat/completions")).status).toBe(400); // the v1 API needs a model
  });

  it("answers as Azure does without an api-version, without a key, and for a wrong one", async () => {
    expect((await chat("/openai/deployments/mini/chat/completions")).status).toBe(404);
    expect((await chat("/openai/deployments/mini/chat/completions?api-version=1", "az-wrong")).status).toBe(401);
    expect((await chat("/v1/chat/completions")).status).toBe(404);
  });

  it("answers a key's fault, and the next requests' faults on demand", async () => {
    expect((await chat("/openai/deployments/mini/chat/completions?api-version=1", "az-limited")).status).toBe(429);
    azure.failNext("fault-503");
    expect((await chat("/openai/deployments/mini/chat/completions?api-version=1")).status).toBe(503);
    expect((await chat("/openai/deployments/mini/chat/completions?api-version=1")).status).toBe(200);
  });
});
