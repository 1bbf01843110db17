import { describe, expect, it } from "vitest";
import { call, json, mockUpstream, openaiJson, postJson, proxyRequest, text } from "../testing";

describe("/v1 pass-through", () => {
  it("forwards the body bytes unchanged, never re-serialised", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const raw = '{ "model" : "gpt-4o-mini",\n  "messages": [{"role":"user","content":"caf\\u00e9 ☕"}] , "x": 1.50 }';
    await call(postJson("/v1/chat/completions", raw));
    expect(await upstream[0]?.text()).toBe(raw);
  });

  it.each([
    ["GET", "/v1/models", undefined],
    ["GET", "/v1/files?purpose=batch&limit=2", undefined],
    ["DELETE", "/v1/files/file-abc", undefined],
    ["POST", "/v1/embeddings", '{"input":"x"}'],
    ["POST", "/v1/responses", '{"input":"x"}'],
    ["POST", "/v1/some/future/endpoint", "{}"],
  ])("forwards %s %s with method, path and query unchanged", async (method, path, body) => {
    const upstream = mockUpstream(() => openaiJson({ ok: true }));
    const { response } = await call(
      proxyRequest(path, { method, body, headers: { "content-type": "application/json" } }),
    );
    expect(response.status).toBe(200);
    expect(upstream[0]?.method).toBe(method);
    expect(upstream[0]?.url).toBe(`https://api.openai.com${path}`);
  });

  it("forwards a multipart upload byte for byte with its boundary", async () => {
    const upstream = mockUpstream(() => openaiJson({ text: "ok" }));
    const form = new FormData();
    form.append("model", "whisper-1");
    form.append("file", new File([new Uint8Array([0, 1, 2, 255, 254])], "a.mp3", { type: "audio/mpeg" }));
    const original = new Request("http://proxy.test/v1/audio/transcriptions", { method: "POST", body: form });
    const bytes = new Uint8Array(await original.clone().arrayBuffer());
    const { response } = await call(original);
    expect(response.status).toBe(200);
    expect(upstream[0]?.headers.get("content-type")).toBe(original.headers.get("content-type"));
    expect(new Uint8Array((await upstream[0]?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(bytes);
  });

  it("passes a binary response through unchanged, with its length", async () => {
    const audio = new Uint8Array(4096).map((_, i) => (i * 7) % 256);
    mockUpstream(() => new Response(audio, { headers: { "content-type": "audio/mpeg", "content-length": "4096" } }));
    const { response } = await call(postJson("/v1/audio/speech", { model: "tts-1", input: "hi", voice: "alloy" }));
    expect(response.headers.get("content-type")).toBe("audio/mpeg");
    expect(response.headers.get("content-length")).toBe("4096");
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(audio);
  });

  it("answers /v1 itself with 404 in OpenAI's shape", async () => {
    const { response } = await call(proxyRequest("/v1"));
    expect(response.status).toBe(404);
    expect(await json(response)).toMatchObject({ error: { type: "invalid_request_error", code: "unknown_url" } });
  });

  it("answers 404 for a path that is /v1 only once decoded", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(proxyRequest("/v%31/models"));
    expect(response.status).toBe(404);
    expect(upstream).toHaveLength(0);
  });

  it("forwards a body that is not JSON to an endpoint that bills no tokens, unread", async () => {
    const upstream = mockUpstream(() => openaiJson({ ok: true }));
    const { response } = await call(postJson("/v1/some/future/endpoint", "{oops"));
    expect(response.status).toBe(200);
    expect(await upstream[0]?.text()).toBe("{oops");
    await text(response);
  });
});
