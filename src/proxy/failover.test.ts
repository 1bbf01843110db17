import { describe, expect, it } from "vitest";
import {
  call,
  json,
  leavable,
  logged,
  mockUpstream,
  openaiJson,
  postJson,
  proxyRequest,
  requestLogs,
  text,
} from "../testing";

/** Keys no other test uses: key state is kept per isolate, by key. */
const fresh = () => crypto.randomUUID().replaceAll("-", "");
const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
const USAGE = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
/** A model only the OpenAI-compatible upstream serves. */
const DEEP = { ...CHAT, model: "deepseek-chat" };

/** Two upstreams (an OpenAI-compatible one with two keys, an Azure one), with keys of their own. */
function setup(overrides: { attempts?: number; aliases?: Record<string, string>; weights?: [number, number] } = {}) {
  const id = fresh();
  const keys = { A1: `sk-a1-${id}`, A2: `sk-a2-${id}`, AZ: `az-${id}` };
  const upstreams = [
    {
      name: "compat",
      base_url: `https://compat-${id}.test/v1`,
      keys: ["A1", "A2"],
      models: ["gpt-4o-mini", "gpt-4o", "deepseek-*"],
      weight: overrides.weights?.[0] ?? 1,
    },
    {
      name: "azure",
      kind: "azure",
      base_url: `https://azure-${id}.openai.azure.com`,
      keys: ["AZ"],
      api_version: "2024-10-21",
      deployments: { "gpt-4o-mini": "mini", "gpt-4o": "big" },
      weight: overrides.weights?.[1] ?? 0.000001,
    },
  ];
  const vars = {
    ...keys,
    UPSTREAMS: JSON.stringify(upstreams),
    UPSTREAM_ATTEMPTS: String(overrides.attempts ?? 2),
    ...(overrides.aliases ? { MODEL_ALIASES: JSON.stringify(overrides.aliases) } : {}),
  } as Record<string, string>;
  const which = (request: Request) => {
    const url = new URL(request.url);
    if (url.hostname.startsWith("azure-")) return "azure";
    return request.headers.get("authorization") === `Bearer ${keys.A1}` ? "A1" : "A2";
  };
  return { keys, vars, which };
}

function tries() {
  return logged.filter((line) => line.includes('"msg":"upstream try"')).map((line) => JSON.parse(line));
}

describe("routing by model and alias", () => {
  it("sends a model to the upstream that serves it, and an alias as the model it stands for", async () => {
    const { vars } = setup({ aliases: { fast: "gpt-4o-mini" } });
    const upstream = mockUpstream(() => openaiJson({ usage: USAGE }));
    const deep = await call(postJson("/v1/chat/completions", { ...CHAT, model: "deepseek-chat" }), vars);
    expect(deep.response.status).toBe(200);
    expect(new URL(upstream[0]?.url ?? "").hostname).toMatch(/^compat-/);
    const fast = await call(postJson("/v1/chat/completions", { ...CHAT, model: "fast" }), vars);
    await text(fast.response);
    await fast.settled();
    expect(await upstream[1]?.json()).toMatchObject({ model: "gpt-4o-mini" });
    expect(requestLogs().at(-1)).toMatchObject({ model: "gpt-4o-mini", modelRequested: "fast", upstream: "compat" });
  });

  it("answers 404 model_not_found, in OpenAI's shape, for a model no upstream serves", async () => {
    const { vars } = setup();
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(postJson("/v1/chat/completions", { ...CHAT, model: "claude-9" }), vars);
    expect(response.status).toBe(404);
    expect(await json(response)).toMatchObject({
      error: { code: "model_not_found", type: "invalid_request_error", message: expect.stringContaining("claude-9") },
    });
    expect(upstream).toHaveLength(0);
  });

  it("sends Azure its deployment path, api-version and api-key", async () => {
    const { vars, keys } = setup({ weights: [0.000001, 1] });
    const upstream = mockUpstream(() => openaiJson({ usage: USAGE }));
    const { response } = await call(postJson("/v1/chat/completions", { ...CHAT, model: "gpt-4o" }), vars);
    expect(response.status).toBe(200);
    const sent = upstream[0];
    expect(sent?.url).toMatch(
      /^https:\/\/azure-[0-9a-f]+\.openai\.azure\.com\/openai\/deployments\/big\/chat\/completions\?api-version=2024-10-21$/,
    );
    expect(sent?.headers.get("api-key")).toBe(keys.AZ);
    expect(sent?.headers.has("authorization")).toBe(false);
  });

  it("spreads requests by weight among the upstreams that serve a model", async () => {
    const { vars } = setup({ weights: [3, 1] });
    const upstream = mockUpstream(() => openaiJson({ usage: USAGE }));
    for (let i = 0; i < 200; i++) await call(postJson("/v1/chat/completions", CHAT), vars);
    const azure = upstream.filter((r) => new URL(r.url).hostname.startsWith("azure-")).length;
    // A quarter expected: 50 of 200, well within 25..75.
    expect(azure).toBeGreaterThan(25);
    expect(azure).toBeLessThan(75);
  });

  it("uses an upstream's keys in turn", async () => {
    const { vars, which } = setup();
    const upstream = mockUpstream(() => openaiJson({ usage: USAGE }));
    for (let i = 0; i < 4; i++) await call(postJson("/v1/chat/completions", CHAT), vars);
    expect(upstream.map(which)).toEqual(["A1", "A2", "A1", "A2"]);
  });
});

describe("failover before the first byte", () => {
  it("moves a 429 to another key when no other upstream serves the model, and rests the key until its Retry-After", async () => {
    const { vars, which } = setup();
    const upstream = mockUpstream((request) =>
      which(request) === "A1"
        ? openaiJson({ error: { message: "slow down", type: "requests", code: "rate_limit_exceeded" } }, 429, {
            "retry-after": "30",
          })
        : openaiJson({ usage: USAGE }, 200, { "x-request-id": `req_${fresh()}` }),
    );
    const first = await call(postJson("/v1/chat/completions", DEEP), vars);
    expect(first.response.status).toBe(200);
    await text(first.response);
    await first.settled();
    // A1 rests: the next requests all go to A2.
    for (let i = 0; i < 2; i++) await call(postJson("/v1/chat/completions", DEEP), vars);
    expect(upstream.map(which)).toEqual(["A1", "A2", "A2", "A2"]);
    const id = first.response.headers.get("x-request-id");
    const answered = tries().find((line) => line.upstreamRequestId === id);
    expect(tries().filter((line) => line.requestId === answered?.requestId)).toMatchObject([
      { upstream: "compat", key: 0, status: 429, failover: "upstream" },
      { upstream: "compat", key: 1, status: 200 },
    ]);
    // The refused try cost nothing: the request is charged what the answer reported.
    expect(requestLogs().find((line) => line.requestId === id)).toMatchObject({
      promptTokens: 10,
      completionTokens: 5,
      tries: 2,
      basis: "reported",
    });
  });

  it.each([
    ["503", () => openaiJson({ error: { message: "overloaded", type: "server_error" } }, 503)],
    ["a 429 (a rate limit is the account's)", () => openaiJson({ error: { message: "slow", type: "requests" } }, 429)],
    ["502", () => new Response("bad gateway", { status: 502 })],
    [
      "a region block",
      () => openaiJson({ error: { message: "no", code: "unsupported_country_region_territory" } }, 403),
    ],
    [
      "a connection error",
      () => {
        throw new TypeError("connection refused");
      },
    ],
  ])("moves %s to the next upstream: the client sees one clean answer", async (_, fault) => {
    const { vars } = setup({ weights: [1, 0.000001] });
    const upstream = mockUpstream((request) =>
      new URL(request.url).hostname.startsWith("compat-") ? fault() : openaiJson({ usage: USAGE, id: "from-azure" }),
    );
    const { response } = await call(postJson("/v1/chat/completions", CHAT), vars);
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ id: "from-azure" });
    expect(upstream.map((r) => new URL(r.url).hostname.split("-")[0])).toEqual(["compat", "azure"]);
  });

  it("takes a key that upstream refuses (401) out of the pool, and says the upstream is degraded", async () => {
    const { vars, which } = setup();
    const upstream = mockUpstream((request) =>
      which(request) === "A1"
        ? openaiJson({ error: { message: "Incorrect API key provided: sk-a1-****", code: "invalid_api_key" } }, 401)
        : openaiJson({ usage: USAGE }),
    );
    for (let i = 0; i < 3; i++)
      expect((await call(postJson("/v1/chat/completions", CHAT), vars)).response.status).toBe(200);
    expect(upstream.map(which)).toEqual(["A1", "A2", "A2", "A2"]);
    const health = await json(await (await call(proxyRequest("/health"), vars)).response);
    expect(health).toMatchObject({
      status: "degraded",
      upstreams: [
        { name: "compat", status: "degraded" },
        { name: "azure", status: "ok" },
      ],
    });
    expect(JSON.stringify(health)).not.toContain("sk-a1");
  });

  it("never moves a stream that has begun: a cut after the first byte ends it in-band", async () => {
    const { vars } = setup();
    const upstream = mockUpstream(() => {
      let pulls = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (pulls++ === 0) {
            controller.enqueue(
              new TextEncoder().encode('data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'),
            );
          } else controller.error(new Error("connection reset"));
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    });
    const { response } = await call(postJson("/v1/chat/completions", { ...CHAT, stream: true }), vars);
    expect(response.status).toBe(200);
    const body = await text(response);
    expect(body).toContain("Hel");
    expect(body).toContain("upstream_interrupted");
    expect(upstream).toHaveLength(1);
  });

  it("passes an upstream's own 504 on: a gateway that timed out may have left the model working", async () => {
    const { vars } = setup({ weights: [1, 0.000001] });
    const upstream = mockUpstream(() => openaiJson({ error: { message: "gateway timeout" } }, 504));
    const { response } = await call(postJson("/v1/chat/completions", CHAT), vars);
    expect(response.status).toBe(504);
    expect(upstream).toHaveLength(1);
  });

  it("passes over an upstream whose only key rests, while another serves the model", async () => {
    const { vars } = setup({ attempts: 1, weights: [1, 0.000001] });
    const one = { ...vars, A2: "", UPSTREAMS: vars.UPSTREAMS?.replace('"keys":["A1","A2"]', '"keys":["A1"]') ?? "" };
    const upstream = mockUpstream((request) =>
      new URL(request.url).hostname.startsWith("compat-")
        ? openaiJson({ error: { message: "slow" } }, 429, { "retry-after": "30" })
        : openaiJson({ usage: USAGE }),
    );
    expect((await call(postJson("/v1/chat/completions", CHAT), one)).response.status).toBe(429);
    expect((await call(postJson("/v1/chat/completions", CHAT), one)).response.status).toBe(200);
    expect(upstream.map((r) => new URL(r.url).hostname.split("-")[0])).toEqual(["compat", "azure"]);
  });

  it("keeps a key's standing per upstream: one that refuses a shared key leaves the other's alone", async () => {
    const id = fresh();
    const upstreams = [
      { name: "x", base_url: `https://shared-${id}.test/v1`, keys: ["K1", "K2"], models: ["x-*"] },
      { name: "y", base_url: `https://shared-${id}.test/v1`, keys: ["K1"], models: ["y-*"] },
    ];
    const vars = { K1: `sk-k1-${id}`, K2: `sk-k2-${id}`, UPSTREAMS: JSON.stringify(upstreams) };
    mockUpstream((request) =>
      request.headers.get("authorization") === `Bearer sk-k1-${id}` &&
      (request.headers.get("x-test") ?? "") === "refuse"
        ? openaiJson({ error: { message: "bad key" } }, 401)
        : openaiJson({ usage: USAGE }),
    );
    await call(postJson("/v1/chat/completions", { ...CHAT, model: "x-1" }, { "x-test": "refuse" }), vars);
    expect((await call(postJson("/v1/chat/completions", { ...CHAT, model: "y-1" }), vars)).response.status).toBe(200);
  });

  it("makes no further try for a client that left during the first", async () => {
    const { vars } = setup();
    const { request, leave } = leavable(postJson("/v1/chat/completions", DEEP));
    const upstream = mockUpstream(() => {
      leave();
      return openaiJson({ error: { message: "slow down", type: "requests" } }, 429, { "retry-after": "1" });
    });
    const { response } = await call(request, vars);
    expect(response.status).toBe(499);
    expect(upstream).toHaveLength(1);
  });

  it("writes no line per try with LOG_REQUESTS=false", async () => {
    const { vars, which } = setup();
    mockUpstream((request) =>
      which(request) === "A1"
        ? openaiJson({ error: { message: "slow down", type: "requests" } }, 429, { "retry-after": "30" })
        : openaiJson({ usage: USAGE }),
    );
    const { response } = await call(postJson("/v1/chat/completions", DEEP), { ...vars, LOG_REQUESTS: "false" });
    expect(response.status).toBe(200);
    expect(tries()).toHaveLength(0);
  });

  it("writes no try line for a request answered at its first try: its request line names upstream and key", async () => {
    const { vars } = setup();
    mockUpstream(() => openaiJson({ usage: USAGE }, 200, { "x-request-id": `req_${fresh()}` }));
    const { response, settled } = await call(postJson("/v1/chat/completions", DEEP), vars);
    await text(response);
    await settled();
    const id = response.headers.get("x-request-id");
    expect(tries().filter((line) => line.upstreamRequestId === id)).toHaveLength(0);
    expect(requestLogs().find((line) => line.requestId === id)).toMatchObject({
      upstream: "compat",
      tries: 1,
      key: expect.any(Number),
    });
  });

  it("stops at UPSTREAM_ATTEMPTS, passing the last answer on", async () => {
    const { vars } = setup({ attempts: 1 });
    const upstream = mockUpstream(() => openaiJson({ error: { message: "overloaded", type: "server_error" } }, 503));
    const { response } = await call(postJson("/v1/chat/completions", CHAT), vars);
    expect(response.status).toBe(503);
    expect(upstream).toHaveLength(1);
  });

  it("never retries a timeout (upstream may still be working), nor a body it cannot send twice", async () => {
    const { vars } = setup();
    const slow = mockUpstream(
      (request) =>
        new Promise<Response>((_, reject) =>
          request.signal.addEventListener("abort", () => reject(request.signal.reason)),
        ),
    );
    const timedOut = await call(postJson("/v1/chat/completions", CHAT), { ...vars, UPSTREAM_TIMEOUT_MS: "50" });
    expect(timedOut.response.status).toBe(504);
    expect(slow).toHaveLength(1);

    const failing = mockUpstream(() => openaiJson({ error: { message: "overloaded" } }, 503));
    const upload = proxyRequest("/v1/files", {
      method: "POST",
      body: new Uint8Array(100),
      headers: { "content-type": "application/octet-stream", "content-length": "100" },
    });
    expect((await call(upload, vars)).response.status).toBe(503);
    expect(failing).toHaveLength(1);
  });

  it("never puts any upstream's key in a response or a log line, whichever answered", async () => {
    const { vars, keys } = setup();
    mockUpstream((request) =>
      openaiJson(
        { error: { message: `bad key ${request.headers.get("authorization") ?? request.headers.get("api-key")}` } },
        400,
      ),
    );
    const { response, settled } = await call(postJson("/v1/chat/completions", CHAT), vars);
    const body = await text(response);
    await settled();
    for (const key of Object.values(keys)) {
      expect(body).not.toContain(key);
      expect(logged.join("\n")).not.toContain(key);
    }
  });
});

describe("GET /v1/models across upstreams", () => {
  it("lists the union of what the upstreams serve, and the aliases", async () => {
    const { vars } = setup({ aliases: { fast: "gpt-4o-mini" } });
    mockUpstream(() =>
      openaiJson({
        object: "list",
        data: [{ id: "deepseek-chat", object: "model", created: 1, owned_by: "deepseek" }, { id: "other" }],
      }),
    );
    const { response } = await call(proxyRequest("/v1/models"), vars);
    const list = await json<{ data: { id: string; owned_by: string }[] }>(response);
    expect(list.data.map((m) => m.id).sort()).toEqual(["deepseek-chat", "fast", "gpt-4o", "gpt-4o-mini"]);
    expect(list.data.find((m) => m.id === "fast")?.owned_by).toBe("alias:gpt-4o-mini");
  });
});
