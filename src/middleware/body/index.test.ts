import { describe, expect, it } from "vitest";
import { call, json, mockUpstream, openaiJson, postJson, proxyRequest } from "../../testing";
import { MAX_READ_BYTES, readBody } from ".";

const LIMIT = { MAX_BODY_BYTES: "1024" };

/** A chunked body (no Content-Length) of `chunks` pieces of `size` bytes that records how much was read. */
function chunkedBody(chunks: number, size: number) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled === chunks) return controller.close();
      state.pulled++;
      controller.enqueue(new Uint8Array(size).fill(120));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

describe("bodyLimit", () => {
  it("refuses a declared Content-Length over MAX_BODY_BYTES with 413 and no upstream call", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(
      proxyRequest("/v1/chat/completions", {
        method: "POST",
        body: "x".repeat(2000),
        headers: { "content-type": "application/json" },
      }),
      LIMIT,
    );
    expect(response.status).toBe(413);
    expect(await json(response)).toMatchObject({
      error: { code: "request_too_large", message: expect.stringContaining("1024 bytes") },
    });
    expect(upstream).toHaveLength(0);
  });

  it("stops reading a chunked body at the cap and refuses it with 413", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { stream, state } = chunkedBody(100, 512);
    const { response } = await call(proxyRequest("/v1/audio/transcriptions", { method: "POST", body: stream }), LIMIT);
    expect(response.status).toBe(413);
    expect(state.pulled).toBeLessThan(10);
    expect(state.cancelled).toBe(true);
    expect(upstream).toHaveLength(0);
  });

  it("refuses a chunked body on POST / with 413 in the seed's shape", async () => {
    const { stream } = chunkedBody(10, 512);
    const { response } = await call(
      proxyRequest("/", { method: "POST", body: stream, headers: { "content-type": "application/json" } }),
      LIMIT,
    );
    expect(response.status).toBe(413);
    expect(await json(response)).toEqual({
      error: "Payload Too Large",
      message: expect.stringContaining("1024"),
      code: "request_too_large",
    });
  });

  it("forwards a chunked body under the cap, bytes unchanged", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { stream } = chunkedBody(2, 500);
    const { response } = await call(proxyRequest("/v1/files", { method: "POST", body: stream }), LIMIT);
    expect(response.status).toBe(200);
    const sent = new Uint8Array((await upstream[0]?.arrayBuffer()) ?? new ArrayBuffer(0));
    expect(sent.byteLength).toBe(1000);
    expect(sent.every((b) => b === 120)).toBe(true);
  });

  it("streams an upload with a declared length straight through, held to that length", async () => {
    const upstream = mockUpstream(() => openaiJson({ id: "file-1" }));
    const bytes = new Uint8Array(900).fill(7);
    const { response } = await call(
      proxyRequest("/v1/files", {
        method: "POST",
        body: bytes,
        headers: { "content-type": "multipart/form-data; boundary=x", "content-length": "900" },
      }),
      LIMIT,
    );
    expect(response.status).toBe(200);
    expect(new Uint8Array((await upstream[0]?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(bytes);
  });

  it("reads an upload to an endpoint that bills tokens, and refuses one that is not the form it claims", async () => {
    const upstream = mockUpstream(() => openaiJson({ text: "ok" }));
    const { response } = await call(
      proxyRequest("/v1/audio/transcriptions", {
        method: "POST",
        body: new Uint8Array(900).fill(7),
        headers: { "content-type": "multipart/form-data; boundary=x" },
      }),
      LIMIT,
    );
    expect(response.status).toBe(400);
    expect(upstream).toHaveLength(0);
  });

  it("accepts by default the bodies OpenAI accepts: a 12.6 MB chat with a base64 image", async () => {
    const upstream = mockUpstream(() => openaiJson({ usage: { prompt_tokens: 800, completion_tokens: 10 } }));
    const image = `data:image/png;base64,${"A".repeat(12_600_000)}`;
    const body = {
      model: "gpt-4o",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: image } }] }],
    };
    const { response } = await call(postJson("/v1/chat/completions", body), { DAILY_TOKEN_BUDGET: "100000" });
    expect(response.status).toBe(200);
    // Sent byte for byte but for the output cap the budget adds: the image is not copied through a parser.
    expect((await upstream[0]?.arrayBuffer())?.byteLength).toBe(JSON.stringify({ max_tokens: 4096, ...body }).length);
  });

  it("accepts by default a 20 MB audio upload, streamed through", async () => {
    const upstream = mockUpstream(() => openaiJson({ id: "file-1" }));
    const form = new FormData();
    form.append("purpose", "user_data");
    form.append("file", new Blob([new Uint8Array(20_000_000)], { type: "audio/mpeg" }), "talk.mp3");
    const request = proxyRequest("/v1/files", { method: "POST", body: form });
    const size = (await request.clone().arrayBuffer()).byteLength;
    const { response } = await call(request);
    expect(response.status).toBe(200);
    expect((await upstream[0]?.arrayBuffer())?.byteLength).toBe(size);
  });

  it("reads into memory no more than OpenAI's 50 MB payload limit, while uploads streamed through may be larger", async () => {
    const upstream = mockUpstream(() => openaiJson({ id: "file-1" }));
    const over = MAX_READ_BYTES + 1;
    const json = await call(
      proxyRequest("/v1/chat/completions", {
        method: "POST",
        body: new Uint8Array(over).fill(0x20),
        headers: { "content-type": "application/json" },
      }),
    );
    expect(json.response.status).toBe(413);
    expect(await json.response.json()).toMatchObject({
      error: {
        code: "request_too_large",
        message: expect.stringContaining(`${MAX_READ_BYTES} bytes on a body the proxy reads`),
      },
    });
    // A token-billed upload is read to see its fields: the same limit.
    const transcription = await call(
      proxyRequest("/v1/audio/transcriptions", {
        method: "POST",
        body: new Uint8Array(over),
        headers: { "content-type": "multipart/form-data; boundary=x" },
      }),
    );
    expect(transcription.response.status).toBe(413);
    // A file upload of a declared length streams through: held to MAX_BODY_BYTES only. (A chunked
    // one is read, to count it against the limit, so it is held to MAX_READ_BYTES too.)
    const file = await call(
      proxyRequest("/v1/files", {
        method: "POST",
        body: new Uint8Array(over),
        headers: { "content-type": "application/octet-stream", "content-length": String(over) },
      }),
    );
    expect(file.response.status).toBe(200);
    expect(upstream).toHaveLength(1);
  });

  it("reads nothing for GET", async () => {
    expect(await readBody(new Request("http://x/"), 10)).toBeNull();
  });

  it("accepts a body of exactly the cap", async () => {
    const body = await readBody(new Request("http://x/", { method: "POST", body: "x".repeat(10) }), 10);
    expect(body).toBeInstanceOf(Uint8Array);
    expect(body instanceof Uint8Array && body.byteLength).toBe(10);
  });
});
