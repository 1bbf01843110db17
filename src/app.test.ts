import { describe, expect, it } from "vitest";
import { call, json, mockUpstream, openaiJson, postJson, proxyRequest, requestLogs, text } from "./testing";

describe("routes", () => {
  it("answers GET /health without calling upstream", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(proxyRequest("/health"));
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({ status: "ok", auth: "open", modes: ["open"] });
    expect(upstream).toHaveLength(0);
  });

  it("answers an unknown path with 404 in the seed's shape", async () => {
    const { response } = await call(proxyRequest("/nope"));
    expect(response.status).toBe(404);
    const body = await json(response);
    expect(body).toEqual({ error: "Not Found", message: expect.stringContaining("/nope"), code: "unknown_url" });
  });

  it("answers a wrong method on / with 405 and an Allow header", async () => {
    const { response } = await call(proxyRequest("/"));
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST, OPTIONS");
    expect(await json(response)).toMatchObject({ error: "Method Not Allowed" });
  });

  it("answers a wrong method under /v1 with 405 in OpenAI's shape", async () => {
    const { response } = await call(proxyRequest("/v1/chat/completions", { method: "PUT", body: "{}" }));
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET, POST, DELETE, OPTIONS");
    expect(await json(response)).toEqual({
      error: { message: expect.any(String), type: "invalid_request_error", param: null, code: "method_not_allowed" },
    });
  });

  it("answers a wrong method on /health with 405", async () => {
    const { response } = await call(proxyRequest("/health", { method: "POST" }));
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET, OPTIONS");
  });
});

describe("configuration", () => {
  it("refuses to serve without a key, with a clear 500", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(postJson("/v1/chat/completions", { model: "m" }), { OPENAI_API_KEY: "" });
    expect(response.status).toBe(500);
    const body = await json<{ error: { message: string; code: string } }>(response);
    expect(body.error.message).toBe("proxy is not configured: OPENAI_API_KEY is not set");
    expect(body.error.code).toBe("proxy_not_configured");
    expect(upstream).toHaveLength(0);
  });

  it("still answers 404, 405 and /health while misconfigured", async () => {
    const misconfigured = { OPENAI_API_KEY: "" };
    expect((await call(proxyRequest("/nope"), misconfigured)).response.status).toBe(404);
    expect((await call(proxyRequest("/health", { method: "POST" }), misconfigured)).response.status).toBe(405);
    expect((await call(proxyRequest("/health"), misconfigured)).response.status).toBe(200);
  });

  it("tells SDKs not to retry a misconfiguration", async () => {
    const { response } = await call(postJson("/v1/chat/completions", {}), { OPENAI_API_KEY: "" });
    expect(response.headers.get("x-should-retry")).toBe("false");
  });

  it("reports every bad setting at once, by name", async () => {
    const { response } = await call(postJson("/", { messages: [{ role: "user", content: "hi" }] }), {
      OPENAI_API_KEY: "",
      MAX_BODY_BYTES: "lots",
      UPSTREAM_TIMEOUT_MS: "-1",
      OPENAI_BASE_URL: "ftp://example.com",
    });
    expect(response.status).toBe(500);
    const { message } = await json<{ message: string }>(response);
    for (const name of ["OPENAI_API_KEY", "MAX_BODY_BYTES", "UPSTREAM_TIMEOUT_MS", "OPENAI_BASE_URL"]) {
      expect(message).toContain(name);
    }
  });
});

describe("observability", () => {
  it("writes one JSON log line per request, with the upstream's request id on the response", async () => {
    mockUpstream(() => openaiJson({ id: "x" }));
    const { response, settled } = await call(
      postJson("/v1/embeddings", { model: "text-embedding-3-small", input: "secret words" }),
    );
    await text(response);
    await settled();
    expect(response.headers.get("x-request-id")).toBe("req_upstream123");
    const logs = requestLogs();
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({
      requestId: "req_upstream123",
      method: "POST",
      path: "/v1/embeddings",
      status: 200,
      upstreamStatus: 200,
      model: "text-embedding-3-small",
      stream: false,
      durationMs: expect.any(Number),
      ttfbMs: expect.any(Number),
    });
    expect(JSON.stringify(logs)).not.toContain("secret words");
  });

  it("writes no request log line with LOG_REQUESTS=false", async () => {
    mockUpstream(() => openaiJson({ id: "x" }));
    const { response, settled } = await call(postJson("/v1/embeddings", { model: "m", input: "x" }), {
      LOG_REQUESTS: "false",
    });
    await text(response);
    await settled();
    expect(requestLogs()).toEqual([]);
  });

  it("gives responses the upstream never saw a request id of the proxy's own", async () => {
    const { response } = await call(proxyRequest("/nope"));
    expect(response.headers.get("x-request-id")).toMatch(/^req_proxy_[0-9a-f]{32}$/);
  });
});
