import { describe, expect, it } from "vitest";
import {
  call,
  controllableSse,
  json,
  leavable,
  mockUpstream,
  openaiJson,
  postJson,
  proxyRequest,
  requestLogs,
  TEST_KEY,
  text,
} from "../testing";

const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

describe("the upstream request", () => {
  it("carries the operator's key, organization and project, never the client's credentials", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    await call(
      postJson("/v1/chat/completions", CHAT, {
        authorization: "Bearer client-token",
        cookie: "session=1",
        "cf-connecting-ip": "203.0.113.9",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-host": "evil.test",
        "openai-organization": "org-client",
        origin: "https://app.example.com",
        "openai-beta": "assistants=v2",
        "x-stainless-os": "Linux",
      }),
      { OPENAI_ORGANIZATION: "org-operator", OPENAI_PROJECT: "proj-operator" },
    );
    const headers = upstream[0]?.headers;
    expect(headers?.get("authorization")).toBe(`Bearer ${TEST_KEY}`);
    expect(headers?.get("openai-organization")).toBe("org-operator");
    expect(headers?.get("openai-project")).toBe("proj-operator");
    expect(headers?.get("openai-beta")).toBe("assistants=v2");
    expect(headers?.get("x-stainless-os")).toBe("Linux");
    for (const name of ["cookie", "cf-connecting-ip", "x-forwarded-for", "x-forwarded-host", "origin"]) {
      expect(headers?.has(name), name).toBe(false);
    }
  });

  it("goes to OPENAI_BASE_URL whatever the client's Host says", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    await call(new Request("http://evil.test/v1/models?limit=2", { headers: { host: "evil.test" } }), {
      OPENAI_BASE_URL: "https://upstream.test/openai/v1/",
    });
    expect(upstream[0]?.url).toBe("https://upstream.test/openai/v1/models?limit=2");
  });

  it("does not follow a redirect from upstream", async () => {
    const upstream = mockUpstream(
      () => new Response(null, { status: 307, headers: { location: "http://127.0.0.1:1/evil" } }),
    );
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(upstream).toHaveLength(1);
    expect(upstream[0]?.redirect).toBe("manual");
    expect(response.status).toBe(502);
    expect(response.headers.get("location")).toBeNull();
    expect(await json(response)).toMatchObject({ error: { code: "upstream_redirect" } });
  });
});

describe("upstream errors", () => {
  it("hide an upstream 401, which echoes part of the key, behind a generic 502", async () => {
    const status = 401;
    mockUpstream(() =>
      openaiJson(
        {
          error: {
            message: `Incorrect API key provided: ${TEST_KEY.slice(0, 8)}****${TEST_KEY.slice(-4)}`,
            code: "invalid_api_key",
          },
        },
        status,
      ),
    );
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(response.status).toBe(502);
    const body = await text(response);
    expect(body).not.toContain(TEST_KEY.slice(-4));
    expect(body).not.toContain("Incorrect API key");
    expect(JSON.parse(body)).toMatchObject({ error: { code: "upstream_auth_failed", type: "server_error" } });
    // A retry cannot mend a refused key: SDKs must not hammer upstream with it.
    expect(response.headers.get("x-should-retry")).toBe("false");
  });

  it.each([
    [429, { "retry-after": "2", "retry-after-ms": "2000", "x-ratelimit-remaining-tokens": "0" }],
    [500, {}],
    [503, { "retry-after": "5" }],
    [400, {}],
    [404, {}],
  ])("pass an upstream %i through with its body and headers", async (status, headers) => {
    const error = { error: { message: "upstream says no", type: "x", param: null, code: "y" } };
    mockUpstream(() => openaiJson(error, status, { "openai-processing-ms": "12", ...headers }));
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(response.status).toBe(status);
    expect(await json(response)).toEqual(error);
    expect(response.headers.get("x-request-id")).toBe("req_upstream123");
    expect(response.headers.get("openai-processing-ms")).toBe("12");
    for (const [name, value] of Object.entries(headers)) expect(response.headers.get(name)).toBe(value);
  });

  it.each([
    [403, "You are not allowed to sample from this model", "model_not_found"],
    [403, "Project proj_abc does not have access to model gpt-5", null],
    [400, "Invalid 'messages[0].content'", "invalid_value"],
  ])("pass an upstream %i through with upstream's type and code", async (status, message, code) => {
    mockUpstream(() => openaiJson({ error: { message, type: "invalid_request_error", param: null, code } }, status));
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(response.status).toBe(status);
    expect(await json(response)).toEqual({ error: { message, type: "invalid_request_error", param: null, code } });
  });

  it.each([
    ["the proxy's key", `bad key ${TEST_KEY} sent`],
    ["a masked key", `Incorrect API key provided: ${TEST_KEY.slice(0, 8)}****${TEST_KEY.slice(-4)}.`],
    ["a project key", "key sk-proj-AbCdEf0123456789_xyz is disabled"],
    ["a session token", "session sess-Zx81kLmNoP0q expired"],
    ["an ephemeral key", "ek_68a1b2c3d4e5f6 was used"],
    ["a bearer credential", "Authorization: Bearer abc.def.ghi was refused"],
  ])("redact %s from an upstream error's message", async (_, message) => {
    mockUpstream(() => openaiJson({ error: { message, type: "invalid_request_error", param: null, code: "x" } }, 403));
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(response.status).toBe(403);
    const body = await json<{ error: { message: string; code: string } }>(response);
    expect(body.error.code).toBe("x");
    expect(body.error.message).toContain("[redacted]");
    expect(body.error.message).not.toMatch(/sk-|sess-[A-Za-z0-9]|ek_6|abc\.def|\*\*\*\*/);
  });

  it("redacts key-like text from an error body that is not JSON", async () => {
    mockUpstream(() => new Response("<html>denied for sk-abcdefghijklmnop</html>", { status: 403 }));
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(response.status).toBe(403);
    expect(await text(response)).toBe("<html>denied for [redacted]</html>");
  });

  it("names the cause and the fix of OpenAI's region block, and tells SDKs not to retry", async () => {
    const blocked = {
      message: "Country, region, or territory not supported",
      type: "request_forbidden",
      param: null,
      code: "unsupported_country_region_territory",
    };
    mockUpstream(() => openaiJson({ error: blocked }, 403));
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(response.status).toBe(403);
    const body = await json<{ error: { message: string; type: string; code: string } }>(response);
    expect(body.error).toMatchObject({ type: "request_forbidden", code: "unsupported_country_region_territory" });
    expect(body.error.message).toContain("placement");
    expect(response.headers.get("x-should-retry")).toBe("false");
  });

  it.each([100, 101, 103, 600, 999])(
    "answers an upstream status %i, which is not a final answer, with 502",
    async (status) => {
      mockUpstream(() => ({ status, headers: new Headers(), body: null, ok: false }) as unknown as Response);
      const { response } = await call(postJson("/v1/chat/completions", CHAT));
      expect(response.status).toBe(502);
      expect(await json(response)).toMatchObject({ error: { code: "upstream_bad_response" } });
    },
  );

  it("answers 502 when upstream is unreachable", async () => {
    mockUpstream(() => {
      throw new TypeError("Network connection lost.");
    });
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(response.status).toBe(502);
    expect(await json(response)).toMatchObject({ error: { code: "upstream_unreachable" } });
  });

  it("answers 504 when upstream sends no headers within UPSTREAM_TIMEOUT_MS, and cancels it", async () => {
    let aborted: (reason: unknown) => void = () => {};
    const abortSeen = new Promise((resolve) => {
      aborted = resolve;
    });
    mockUpstream(
      (request) =>
        new Promise<Response>((_, reject) => {
          request.signal.addEventListener("abort", () => {
            aborted(request.signal.reason);
            reject(request.signal.reason);
          });
        }),
    );
    const { response } = await call(postJson("/v1/chat/completions", CHAT), { UPSTREAM_TIMEOUT_MS: "30" });
    expect(response.status).toBe(504);
    expect(await json(response)).toMatchObject({
      error: { code: "upstream_timeout", message: "POST /v1/chat/completions: upstream sent no response within 30 ms" },
    });
    expect(await abortSeen).toBe("upstream timed out");
    // Upstream may still be generating: a retry would pay for the same work again.
    expect(response.headers.get("x-should-retry")).toBe("false");
  });
});

describe("the response", () => {
  it("passes a 304 through rather than taking it for a redirect", async () => {
    mockUpstream(() => new Response(null, { status: 304, headers: { etag: '"abc"' } }));
    const { response } = await call(
      proxyRequest("/v1/files/file-1/content", { headers: { "if-none-match": '"abc"' } }),
    );
    expect(response.status).toBe(304);
    expect(response.headers.get("etag")).toBe('"abc"');
  });

  it("keeps useful headers and drops cookies, org names and CDN headers", async () => {
    mockUpstream(() =>
      openaiJson({ ok: true }, 200, {
        "set-cookie": "__cf_bm=abc; domain=.api.openai.com",
        "openai-organization": "org-secret-name",
        "cf-ray": "123",
        "x-ratelimit-limit-tokens": "1000",
        "openai-version": "2020-10-01",
      }),
    );
    const { response } = await call(postJson("/v1/chat/completions", CHAT));
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(response.headers.get("openai-organization")).toBeNull();
    expect(response.headers.get("cf-ray")).toBeNull();
    expect(response.headers.get("x-ratelimit-limit-tokens")).toBe("1000");
    expect(response.headers.get("openai-version")).toBe("2020-10-01");
    expect(response.headers.get("content-type")).toContain("application/json");
  });

  it("streams SSE with no-transform caching headers and no content-encoding", async () => {
    const sse = controllableSse({ "content-encoding": "gzip" });
    mockUpstream(() => sse.response);
    const { response } = await call(postJson("/v1/chat/completions", { ...CHAT, stream: true }));
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(response.headers.get("cache-control")).toBe("no-cache, no-transform");
    expect(response.headers.get("content-encoding")).toBeNull();
    sse.send("data: [DONE]\n\n");
    sse.end();
    expect(await text(response)).toBe("data: [DONE]\n\n");
  });

  it("ends a stream that upstream cut mid-way with an SSE error event", async () => {
    const sse = controllableSse();
    mockUpstream(() => sse.response);
    const { response, settled } = await call(postJson("/v1/chat/completions", { ...CHAT, stream: true }));
    sse.send('data: {"choices":[{"delta":{"content":"Hel');
    sse.fail(new Error("connection reset"));
    const body = await text(response);
    expect(body).toContain('"code":"upstream_interrupted"');
    expect(body).not.toContain("[DONE]");
    await settled();
  });

  it("cancels upstream when the client cancels the stream", async () => {
    const sse = controllableSse();
    mockUpstream(() => sse.response);
    const { request, leave } = leavable(postJson("/v1/chat/completions", { ...CHAT, stream: true }));
    const { response, settled } = await call(request);
    sse.send("data: 1\n\n");
    const reader = response.body?.getReader();
    await reader?.read();
    await reader?.cancel("client went away");
    leave();
    await sse.cancellation;
    await settled();
  });

  it("makes no upstream call for a client that has already gone", async () => {
    const upstream = mockUpstream(() => openaiJson({}));
    const client = new AbortController();
    const request = proxyRequest("/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify(CHAT),
      signal: client.signal,
    });
    client.abort();
    const { response } = await call(request);
    expect(response.status).toBe(499);
    expect(upstream).toHaveLength(0);
  });

  it("logs a stream that upstream cut as an error, with its outcome", async () => {
    const sse = controllableSse();
    mockUpstream(() => sse.response);
    const { response, settled } = await call(postJson("/v1/chat/completions", { ...CHAT, stream: true }));
    sse.send("data: 1\n\n");
    sse.fail(new Error("reset"));
    await text(response);
    await settled();
    expect(requestLogs()).toEqual([
      expect.objectContaining({
        level: "error",
        status: 200,
        stream: true,
        outcome: "cut",
        error: "upstream_interrupted",
      }),
    ]);
  });

  it("cancels upstream's stream as soon as the client's request signal says the client went away", async () => {
    const sse = controllableSse();
    mockUpstream(() => sse.response);
    const client = new AbortController();
    const { response, settled } = await call(
      proxyRequest("/v1/chat/completions", { method: "POST", body: JSON.stringify(CHAT), signal: client.signal }),
    );
    expect(response.status).toBe(200);
    client.abort();
    // Without waiting for a next chunk to find nobody reading.
    expect(await sse.cancellation).toBe("client went away");
    await settled();
    expect(requestLogs().at(-1)).toMatchObject({ outcome: "cancelled" });
  });
});

describe("an upstream that refuses the stream_options the proxy adds", () => {
  const CHAT_STREAM = JSON.stringify({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "hi" }],
    stream: true,
  });
  const strictUpstream = () =>
    mockUpstream(async (request) => {
      const body = (await request.clone().json()) as Record<string, unknown>;
      if (body.stream_options !== undefined) {
        return openaiJson(
          {
            error: {
              message: "Unrecognized request argument supplied: stream_options",
              type: "invalid_request_error",
              param: null,
              code: null,
            },
          },
          400,
        );
      }
      const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`;
      return new Response(`${chunk("Hel")}${chunk("lo")}data: [DONE]\n\n`, {
        headers: { "content-type": "text/event-stream" },
      });
    });

  it("gets the client's own request through, once more without the field, and estimates its usage", async () => {
    const upstream = strictUpstream();
    const vars = { OPENAI_BASE_URL: "https://strict-1.test/v1" };
    const { response, settled } = await call(postJson("/v1/chat/completions", CHAT_STREAM), vars);
    expect(response.status).toBe(200);
    expect(await text(response)).toContain("Hel");
    await settled();
    expect(upstream).toHaveLength(2);
    expect(await upstream[0]?.json()).toMatchObject({ stream_options: { include_usage: true } });
    expect(await upstream[1]?.text()).toBe(CHAT_STREAM);
    expect(requestLogs().at(-1)).toMatchObject({
      status: 200,
      basis: "estimate",
      incomplete: true,
      completionTokens: 2,
    });
  });

  it("remembers that the upstream refuses it, and stops adding it there", async () => {
    const upstream = strictUpstream();
    const vars = { OPENAI_BASE_URL: "https://strict-2.test/v1" };
    for (let i = 0; i < 3; i++) {
      const { response } = await call(postJson("/v1/chat/completions", CHAT_STREAM), vars);
      expect(response.status).toBe(200);
      await text(response);
    }
    // One refusal, then only the client's own bytes.
    expect(upstream).toHaveLength(4);
    expect(await upstream[3]?.text()).toBe(CHAT_STREAM);
  });

  it("passes any other 400 on as it is, without a second try", async () => {
    const upstream = mockUpstream(() =>
      openaiJson(
        { error: { message: "Invalid 'messages'", type: "invalid_request_error", param: "messages", code: null } },
        400,
      ),
    );
    const { response } = await call(postJson("/v1/chat/completions", CHAT_STREAM), {
      OPENAI_BASE_URL: "https://strict-3.test/v1",
    });
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { message: "Invalid 'messages'", param: "messages" } });
    expect(upstream).toHaveLength(1);
  });

  it("passes on a refusal of the client's own stream_options: the proxy added only include_usage", async () => {
    const upstream = strictUpstream();
    const own = JSON.stringify({ ...JSON.parse(CHAT_STREAM), stream_options: { include_obfuscation: false } });
    const { response } = await call(postJson("/v1/chat/completions", own), {
      OPENAI_BASE_URL: "https://strict-5.test/v1",
    });
    // The error names stream_options, the client's field, not include_usage, the proxy's: no second try.
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: { message: expect.stringContaining("stream_options") } });
    expect(upstream).toHaveLength(1);
    expect(await upstream[0]?.json()).toMatchObject({
      stream_options: { include_obfuscation: false, include_usage: true },
    });
  });

  it("is not fooled by a 400 that only echoes the words: it keeps adding the field for everyone", async () => {
    const upstream = mockUpstream(async (request) => {
      const body = (await request.clone().json()) as { user?: string };
      if (body.user === undefined)
        return new Response("data: [DONE]\n\n", { headers: { "content-type": "text/event-stream" } });
      const message = `Invalid 'user': '${body.user}' is not a valid user.`;
      return openaiJson({ error: { message, type: "invalid_request_error", param: "user", code: null } }, 400);
    });
    const vars = { OPENAI_BASE_URL: "https://strict-6.test/v1" };
    const poison = JSON.stringify({ ...JSON.parse(CHAT_STREAM), user: "stream_options" });
    const refused = await call(postJson("/v1/chat/completions", poison), vars);
    expect(refused.response.status).toBe(400);
    await text(refused.response);
    const next = await call(postJson("/v1/chat/completions", CHAT_STREAM), vars);
    await text(next.response);
    // Both tries of the poisoned request failed: the upstream was not marked as refusing the field.
    expect(upstream).toHaveLength(3);
    expect(await upstream[2]?.json()).toMatchObject({ stream_options: { include_usage: true } });
  });

  it("adds nothing with INCLUDE_STREAM_USAGE=false: the client's bytes go upstream as they are", async () => {
    const upstream = strictUpstream();
    const { response } = await call(postJson("/v1/chat/completions", CHAT_STREAM), {
      OPENAI_BASE_URL: "https://strict-4.test/v1",
      INCLUDE_STREAM_USAGE: "false",
    });
    await text(response);
    expect(upstream).toHaveLength(1);
    expect(await upstream[0]?.text()).toBe(CHAT_STREAM);
  });
});
