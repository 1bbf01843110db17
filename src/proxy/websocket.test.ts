import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { limiterFor } from "../limits/client";
import { call, json, mockUpstream, openaiJson, postJson, proxyRequest, requestLogs, seen, TEST_KEY } from "../testing";
import { BUDGET_CLOSE } from "./websocket";

const CLIENT_KEY = "pk_realtime_0123456789abcdef";
const KEYS = { PROXY_KEYS: `voice:${CLIENT_KEY}` };
const USAGE = {
  total_tokens: 1300,
  input_tokens: 1000,
  output_tokens: 300,
  input_token_details: { text_tokens: 200, audio_tokens: 800, cached_tokens: 0 },
  output_token_details: { text_tokens: 50, audio_tokens: 250 },
};

/** A fake Realtime upstream: answers each `response.create` with a delta and a `response.done` carrying USAGE. */
function realtimeUpstream() {
  const pair = new WebSocketPair();
  const [forProxy, upstream] = [pair[0], pair[1]];
  const received: string[] = [];
  let closed: (event: { code: number; reason: string }) => void = () => {};
  const closing = new Promise<{ code: number; reason: string }>((resolve) => {
    closed = resolve;
  });
  upstream.accept();
  upstream.addEventListener("message", (event) => {
    const data = String(event.data);
    received.push(data);
    if (JSON.parse(data).type !== "response.create") return;
    upstream.send(JSON.stringify({ type: "response.output_audio_transcript.delta", delta: "Hi" }));
    upstream.send(
      JSON.stringify({ type: "response.done", response: { id: "resp_1", status: "completed", usage: USAGE } }),
    );
  });
  upstream.addEventListener("close", (event) => closed({ code: event.code, reason: event.reason }));
  upstream.send(JSON.stringify({ type: "session.created", session: { model: "gpt-realtime" } }));
  const requests = mockUpstream(
    () => new Response(null, { status: 101, webSocket: forProxy, headers: { "sec-websocket-protocol": "realtime" } }),
  );
  return { requests, received, closing, upstream };
}

function upgrade(path: string, headers: Record<string, string>): Request {
  return proxyRequest(path, { headers: { upgrade: "websocket", ...headers } });
}

/** Accepts the client's end of the relayed socket and collects what arrives. */
function clientEnd(response: Response) {
  const socket = response.webSocket;
  if (socket === null) throw new Error(`no WebSocket in a ${response.status}`);
  socket.accept();
  const messages: string[] = [];
  const waiters: Array<() => void> = [];
  let closed: (event: { code: number; reason: string }) => void = () => {};
  const closing = new Promise<{ code: number; reason: string }>((resolve) => {
    closed = resolve;
  });
  socket.addEventListener("message", (event) => {
    messages.push(String(event.data));
    for (const wake of waiters.splice(0)) wake();
  });
  socket.addEventListener("close", (event) => closed({ code: event.code, reason: event.reason }));
  const until = async (type: string) => {
    for (;;) {
      const found = messages.find((m) => JSON.parse(m).type === type);
      if (found !== undefined) return found;
      await new Promise<void>((wake) => waiters.push(wake));
    }
  };
  return { socket, messages, until, closing };
}

describe("Realtime over WebSocket", () => {
  it("relays a session with the operator's key, the client's credential coming as a browser's subprotocol", async () => {
    const fake = realtimeUpstream();
    const { response, settled } = await call(
      upgrade("/v1/realtime?model=gpt-realtime", {
        "sec-websocket-protocol": `realtime, openai-insecure-api-key.${CLIENT_KEY}, openai-beta.realtime-v1`,
        origin: "https://app.example.com",
      }),
      KEYS,
    );
    expect(response.status).toBe(101);
    // The client gets the subprotocol it can use, never the one that carries its key.
    expect(response.headers.get("sec-websocket-protocol")).toBe("realtime");
    const sent = fake.requests[0];
    expect(new URL(sent?.url ?? "http://x").pathname + new URL(sent?.url ?? "http://x").search).toBe(
      "/v1/realtime?model=gpt-realtime",
    );
    expect(sent?.headers.get("authorization")).toBe(`Bearer ${TEST_KEY}`);
    expect(sent?.headers.get("upgrade")).toBe("websocket");
    expect(sent?.headers.get("sec-websocket-protocol")).toBe("realtime");
    expect(sent?.headers.get("openai-beta")).toBe("realtime=v1");
    expect(JSON.stringify([...(sent?.headers ?? [])])).not.toContain(CLIENT_KEY);

    const client = clientEnd(response);
    await client.until("session.created");
    client.socket.send(JSON.stringify({ type: "response.create" }));
    await client.until("response.done");
    expect(fake.received.map((m) => JSON.parse(m).type)).toEqual(["response.create"]);
    client.socket.close(1000, "bye");
    expect(await fake.closing).toMatchObject({ code: 1000 });
    await settled();
    expect(requestLogs().at(-1)).toMatchObject({
      path: "/v1/realtime",
      client: "key:voice",
      model: "gpt-realtime",
      status: 101,
      promptTokens: 1000,
      completionTokens: 300,
      basis: "reported",
      outcome: "cancelled",
    });
    // gpt-realtime: 200 text input × $4, 800 audio input × $32, 50 text output × $16, 250 audio output × $64.
    expect(requestLogs().at(-1)?.costUsd).toBeCloseTo((200 * 4 + 800 * 32 + 50 * 16 + 250 * 64) / 1e6, 12);
  });

  it("accepts a server's bearer credential too", async () => {
    realtimeUpstream();
    const { response } = await call(
      upgrade("/v1/realtime?model=gpt-realtime", { authorization: `Bearer ${CLIENT_KEY}` }),
      KEYS,
    );
    expect(response.status).toBe(101);
    clientEnd(response).socket.close(1000);
  });

  it("uses an upstream's keys in turn, one per session, and sends Azure its deployment", async () => {
    const id = crypto.randomUUID().replaceAll("-", "");
    const upstreams = [
      { name: "pool", base_url: `https://pool-${id}.test/v1`, keys: ["RT_A", "RT_B"], models: ["gpt-realtime"] },
      {
        name: "az",
        kind: "azure",
        base_url: `https://az-${id}.openai.azure.com`,
        keys: ["RT_A"],
        api_version: "2025-04-01-preview",
        deployments: { "gpt-realtime-mini": "rt-mini" },
      },
    ];
    const vars = { ...KEYS, RT_A: `sk-rt-a-${id}`, RT_B: `sk-rt-b-${id}`, UPSTREAMS: JSON.stringify(upstreams) };
    /** One session through the proxy, with an upstream of its own; what upstream was asked. */
    const session = async (query: string) => {
      const fake = realtimeUpstream();
      const { response } = await call(
        upgrade(`/v1/realtime?${query}`, { authorization: `Bearer ${CLIENT_KEY}` }),
        vars,
      );
      expect(response.status).toBe(101);
      clientEnd(response).socket.close(1000);
      return fake.requests[0];
    };
    const first = await session("model=gpt-realtime");
    const second = await session("model=gpt-realtime");
    expect([first, second].map((r) => r?.headers.get("authorization"))).toEqual([
      `Bearer sk-rt-a-${id}`,
      `Bearer sk-rt-b-${id}`,
    ]);
    expect((await session("model=gpt-realtime-mini&deployment=other"))?.url).toBe(
      `https://az-${id}.openai.azure.com/openai/realtime?model=gpt-realtime-mini&api-version=2025-04-01-preview&deployment=rt-mini`,
    );
  });

  it.each([
    ["no credential", {}, 401],
    [
      "a wrong credential",
      { "sec-websocket-protocol": "realtime, openai-insecure-api-key.pk_wrong_0123456789ab" },
      401,
    ],
  ])("refuses an upgrade with %s, before upstream", async (_, headers, status) => {
    const fake = realtimeUpstream();
    const { response } = await call(upgrade("/v1/realtime?model=gpt-realtime", headers), KEYS);
    expect(response.status).toBe(status);
    expect(fake.requests).toHaveLength(0);
  });

  it("refuses an upgrade from an origin the allowlist leaves out", async () => {
    const fake = realtimeUpstream();
    const { response } = await call(
      upgrade("/v1/realtime?model=gpt-realtime", {
        authorization: `Bearer ${CLIENT_KEY}`,
        origin: "https://evil.test",
      }),
      { ...KEYS, ALLOWED_ORIGINS: "https://app.example.com" },
    );
    expect(response.status).toBe(403);
    expect(fake.requests).toHaveLength(0);
  });

  it("applies ALLOWED_MODELS to the session's model", async () => {
    const fake = realtimeUpstream();
    const { response } = await call(
      upgrade("/v1/realtime?model=gpt-realtime", { authorization: `Bearer ${CLIENT_KEY}` }),
      { ...KEYS, ALLOWED_MODELS: "gpt-realtime-mini" },
    );
    expect(response.status).toBe(403);
    expect(await json(response)).toMatchObject({ error: { code: "model_not_allowed" } });
    expect(fake.requests).toHaveLength(0);
  });

  it("refuses a query string that names the model twice, or none while models are limited", async () => {
    const fake = realtimeUpstream();
    const vars = { ...KEYS, ALLOWED_MODELS: "gpt-realtime-mini" };
    const auth = { authorization: `Bearer ${CLIENT_KEY}` };
    // Parsers disagree on which of two counts: the allowed one here, the dear one upstream.
    const twice = await call(upgrade("/v1/realtime?model=gpt-realtime-mini&model=gpt-realtime", auth), vars);
    expect(twice.response.status).toBe(400);
    expect(await json(twice.response)).toMatchObject({
      error: { param: "model", message: expect.stringContaining("more than once") },
    });
    const none = await call(upgrade("/v1/realtime", auth), vars);
    expect(none.response.status).toBe(400);
    expect(fake.requests).toHaveLength(0);
  });

  it("counts the session against the rate limit and the concurrent-stream limit", async () => {
    realtimeUpstream();
    const key = `pk_slots_${crypto.randomUUID().replaceAll("-", "")}`;
    const headers = { authorization: `Bearer ${key}` };
    const vars = { PROXY_KEYS: `slots${crypto.randomUUID().slice(0, 8)}:${key}`, MAX_CONCURRENT_STREAMS: "1" };
    const open = await call(upgrade("/v1/realtime?model=gpt-realtime", headers), vars);
    expect(open.response.status).toBe(101);
    realtimeUpstream();
    const second = await call(upgrade("/v1/realtime?model=gpt-realtime", headers), vars);
    expect(second.response.status).toBe(429);
    clientEnd(open.response).socket.close(1000);
    await open.settled();
  });

  it("charges the session's usage to the budget, and closes it with a clear reason once the budget is spent", async () => {
    const fake = realtimeUpstream();
    const key = `pk_budgeted_${crypto.randomUUID().replaceAll("-", "")}`;
    const name = `budgeted${crypto.randomUUID().slice(0, 8)}`;
    // The session reserves one answer's output (4 096) at first; after an answer of 1 300 tokens it
    // needs 1 300 more, and only 904 of the 5 000 are left.
    const { response, settled } = await call(
      upgrade("/v1/realtime?model=gpt-realtime", { authorization: `Bearer ${key}` }),
      {
        PROXY_KEYS: `${name}:${key}`,
        DAILY_TOKEN_BUDGET: "5000",
      },
    );
    expect(response.status).toBe(101);
    const client = clientEnd(response);
    client.socket.send(JSON.stringify({ type: "response.create" }));
    expect(await client.closing).toEqual(BUDGET_CLOSE);
    expect((await fake.closing).code).toBe(BUDGET_CLOSE.code);
    await settled();
    const day = new Date().toISOString().slice(0, 10);
    expect(await limiterFor(env.RATE_LIMITER, `key:${name}`).usedOn(day)).toMatchObject({ spent: 1300, reserved: 0 });
    expect(requestLogs().at(-1)).toMatchObject({ basis: "reported", promptTokens: 1000, completionTokens: 300 });
  });

  it("passes upstream's refusal of the upgrade on, less anything key-like", async () => {
    mockUpstream(() =>
      openaiJson(
        {
          error: {
            message: "model_not_found for sk-abcdefgh1234",
            type: "invalid_request_error",
            code: "model_not_found",
          },
        },
        404,
      ),
    );
    const { response } = await call(
      upgrade("/v1/realtime?model=nope", { authorization: `Bearer ${CLIENT_KEY}` }),
      KEYS,
    );
    expect(response.status).toBe(404);
    expect(await json(response)).toMatchObject({
      error: { code: "model_not_found", message: "model_not_found for [redacted]" },
    });
    expect(seen.join()).not.toContain(CLIENT_KEY);
  });
});

describe("endpoints that mint keys for OpenAI directly", () => {
  it.each(["/v1/realtime/client_secrets", "/v1/realtime/sessions", "/v1/realtime/transcription_sessions"])(
    "refuse POST %s while a budget applies, saying why",
    async (path) => {
      const upstream = mockUpstream(() => openaiJson({ value: "ek_123" }));
      const { response } = await call(postJson(path, { session: { type: "realtime" } }), {
        DAILY_TOKEN_BUDGET: "100000",
      });
      expect(response.status).toBe(403);
      const body = await json<{ error: { message: string; type: string } }>(response);
      expect(body.error.type).toBe("permission_error");
      expect(body.error.message).toContain("talks to OpenAI directly");
      expect(upstream).toHaveLength(0);
    },
  );

  it("allow it when ALLOWED_PATHS names it, or when no budget applies", async () => {
    const upstream = mockUpstream(() => openaiJson({ value: "ek_123" }));
    const named = await call(postJson("/v1/realtime/client_secrets", {}), {
      DAILY_TOKEN_BUDGET: "100000",
      ALLOWED_PATHS: "/v1/chat/completions,/v1/realtime/client_secrets",
    });
    expect(named.response.status).toBe(200);
    const unbudgeted = await call(postJson("/v1/realtime/client_secrets", {}));
    expect(unbudgeted.response.status).toBe(200);
    expect(upstream).toHaveLength(2);
  });

  it("are not named by a wildcard", async () => {
    mockUpstream(() => openaiJson({ value: "ek_123" }));
    const { response } = await call(postJson("/v1/realtime/client_secrets", {}), {
      DAILY_TOKEN_BUDGET: "100000",
      ALLOWED_PATHS: "/v1/*",
    });
    expect(response.status).toBe(403);
  });
});
