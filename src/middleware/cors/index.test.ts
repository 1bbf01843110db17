import { describe, expect, it } from "vitest";
import { call, controllableSse, json, mockUpstream, openaiJson, postJson, proxyRequest, text } from "../../testing";

const ALLOWLIST = { ALLOWED_ORIGINS: "https://app.example.com,https://*.example.org" };

function preflight(origin: string, requestHeaders = "authorization, content-type, x-stainless-os") {
  return proxyRequest("/v1/chat/completions", {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": requestHeaders,
    },
  });
}

describe("preflight", () => {
  it("answers an allowed origin with 204, reflecting the requested headers", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(preflight("https://app.example.com"), ALLOWLIST);
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(response.headers.get("access-control-allow-methods")).toBe("GET, POST, DELETE, OPTIONS");
    expect(response.headers.get("access-control-allow-headers")).toBe("authorization, content-type, x-stainless-os");
    expect(response.headers.get("access-control-max-age")).toBe("86400");
    expect(response.headers.get("vary")).toContain("Origin");
    expect(upstream).toHaveLength(0);
  });

  it("answers with * when every origin is allowed, on any path", async () => {
    const { response } = await call(
      proxyRequest("/anything/at/all", {
        method: "OPTIONS",
        headers: { origin: "https://x.test", "access-control-request-method": "POST" },
      }),
    );
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-headers")).toBe("authorization, content-type");
  });

  it("refuses a disallowed origin with 403 and no CORS headers", async () => {
    const { response } = await call(preflight("https://evil.test"), ALLOWLIST);
    expect(response.status).toBe(403);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    expect(response.headers.get("access-control-allow-headers")).toBeNull();
  });

  it("answers a preflight even when the proxy is misconfigured", async () => {
    const { response } = await call(preflight("https://app.example.com"), { ...ALLOWLIST, OPENAI_API_KEY: "" });
    expect(response.status).toBe(204);
  });

  it("answers OPTIONS without an Origin with 204 and Allow", async () => {
    const { response } = await call(proxyRequest("/v1/models", { method: "OPTIONS" }));
    expect(response.status).toBe(204);
    expect(response.headers.get("allow")).toBe("GET, POST, DELETE, OPTIONS");
  });
});

describe("actual requests", () => {
  it.each(["null", "https://app.example.com.evil.com", "http://app.example.com", "https://example.org"])(
    "refuses origin %s with 403, no CORS headers and no upstream call",
    async (origin) => {
      const upstream = mockUpstream(() => openaiJson({}));
      const { response } = await call(postJson("/v1/chat/completions", { model: "m" }, { origin }), ALLOWLIST);
      expect(response.status).toBe(403);
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
      expect(await json(response)).toMatchObject({ error: { code: "origin_not_allowed", type: "permission_error" } });
      expect(upstream).toHaveLength(0);
    },
  );

  it("lets requests without an Origin through (servers, curl), with Vary: Origin", async () => {
    mockUpstream(() => openaiJson({ ok: true }));
    const { response } = await call(postJson("/v1/chat/completions", { model: "m" }), ALLOWLIST);
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    expect(response.headers.get("vary")).toBe("Origin");
  });

  it("adds CORS headers to a successful response for an allowed origin", async () => {
    mockUpstream(() => openaiJson({ ok: true }));
    const { response } = await call(
      postJson("/v1/chat/completions", { model: "m" }, { origin: "https://a.b.example.org" }),
      ALLOWLIST,
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://a.b.example.org");
    expect(response.headers.get("access-control-expose-headers")).toContain("x-request-id");
    expect(response.headers.get("access-control-expose-headers")).toContain("retry-after");
    expect(response.headers.get("access-control-expose-headers")).toContain("x-ratelimit-remaining-requests");
    expect(response.headers.get("vary")).toBe("Origin");
  });

  it("adds CORS headers to proxy errors and upstream errors", async () => {
    mockUpstream(() => openaiJson({ error: { message: "slow down" } }, 429, { "retry-after": "2" }));
    const origin = { origin: "https://app.example.com" };
    const upstreamError = await call(postJson("/v1/chat/completions", { model: "m" }, origin), ALLOWLIST);
    expect(upstreamError.response.status).toBe(429);
    expect(upstreamError.response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    const proxyError = await call(postJson("/", "{not json", origin), ALLOWLIST);
    expect(proxyError.response.status).toBe(400);
    expect(proxyError.response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(proxyError.response.headers.get("access-control-expose-headers")).toContain("x-request-id");
  });

  it("adds CORS headers to streams", async () => {
    const sse = controllableSse();
    mockUpstream(() => sse.response);
    const { response } = await call(
      postJson("/v1/chat/completions", { stream: true }, { origin: "https://app.example.com" }),
      ALLOWLIST,
    );
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    sse.end();
    await text(response);
  });

  it("answers * without Vary when every origin is allowed", async () => {
    mockUpstream(() => openaiJson({ ok: true }));
    const { response } = await call(
      postJson("/v1/chat/completions", { model: "m" }, { origin: "https://anyone.test" }),
    );
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("vary")).toBeNull();
  });
});

describe("every kind of answer an allowed origin can get", () => {
  const origin = "https://app.example.com";
  const headers = { origin, "cf-connecting-ip": "192.0.2.77" };
  type Case = [string, () => Request, Record<string, string>, number];
  const cases: Case[] = [
    ["a success", () => postJson("/v1/chat/completions", { model: "m" }, headers), {}, 200],
    ["a bad request", () => postJson("/", "{oops", headers), {}, 400],
    [
      "a refused credential",
      () => postJson("/v1/chat/completions", {}, headers),
      { PROXY_KEYS: "web:pk_0123456789abcdef0" },
      401,
    ],
    ["a refused model", () => postJson("/v1/chat/completions", { model: "o1" }, headers), { ALLOWED_MODELS: "m" }, 403],
    ["an unknown path", () => proxyRequest("/nope", { headers }), {}, 404],
    ["an unknown API version", () => proxyRequest("/v2/models", { headers }), {}, 404],
    ["a wrong method", () => proxyRequest("/v1/models", { method: "PUT", headers }), {}, 405],
    ["a wrong method on /", () => proxyRequest("/", { method: "GET", headers }), {}, 405],
    [
      "a body too large",
      () => postJson("/v1/chat/completions", { model: "m", pad: "x".repeat(200) }, headers),
      { MAX_BODY_BYTES: "100" },
      413,
    ],
    ["a rate limit", () => postJson("/v1/chat/completions", { model: "m" }, headers), { RATE_LIMIT_RPM: "1" }, 429],
    [
      "a broken configuration",
      () => postJson("/v1/chat/completions", { model: "m" }, headers),
      { OPENAI_API_KEY: "" },
      500,
    ],
    [
      "an unreachable upstream",
      () => postJson("/v1/chat/completions", { model: "m" }, { ...headers, "x-unreachable": "1" }),
      {},
      502,
    ],
  ];

  it.each(cases)("%s carries the CORS headers and a request id a page can read", async (_, request, vars, status) => {
    mockUpstream((upstream) => {
      if (upstream.headers.get("x-unreachable")) throw new TypeError("fetch failed");
      return openaiJson({ ok: true });
    });
    if (status === 429) await call(request(), { ...ALLOWLIST, ...vars });
    const { response } = await call(request(), { ...ALLOWLIST, ...vars });
    expect(response.status).toBe(status);
    expect(response.headers.get("access-control-allow-origin")).toBe(origin);
    expect(response.headers.get("access-control-expose-headers")).toContain("x-request-id");
    expect(response.headers.get("x-request-id")).toMatch(/^req_/);
    expect(response.headers.get("vary")).toContain("Origin");
  });
});
