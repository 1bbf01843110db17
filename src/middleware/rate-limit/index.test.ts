import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ceilingFor } from "../../limits/ceiling";
import { call, controllableSse, json, leavable, mockUpstream, openaiJson, postJson, text } from "../../testing";

const CHAT = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };
const STREAM = { ...CHAT, stream: true };
let ip = 0;
/** A client of its own for each test: open mode keys the limiter by CF-Connecting-IP. */
const newClient = () => ({ "cf-connecting-ip": `198.51.100.${++ip}` });

describe("rateLimit", () => {
  it("lets exactly 10 of 100 concurrent requests through a limit of 10", async () => {
    const upstream = mockUpstream(() => openaiJson({ ok: true }));
    const client = newClient();
    const results = await Promise.all(
      Array.from({ length: 100 }, () => call(postJson("/v1/chat/completions", CHAT, client), { RATE_LIMIT_RPM: "10" })),
    );
    const statuses = results.map((r) => r.response.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(90);
    expect(upstream).toHaveLength(10);
  });

  it("answers 429 rate_limit_exceeded with Retry-After and OpenAI's headers, replacing upstream's", async () => {
    mockUpstream(() => openaiJson({ ok: true }, 200, { "x-ratelimit-remaining-requests": "9999" }));
    const client = newClient();
    const vars = { RATE_LIMIT_RPM: "2" };
    const first = await call(postJson("/v1/chat/completions", CHAT, client), vars);
    expect(first.response.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(first.response.headers.get("x-ratelimit-remaining-requests")).toBe("1");
    expect(first.response.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d/);
    await call(postJson("/", CHAT, client), vars);
    const third = await call(postJson("/v1/chat/completions", CHAT, client), vars);
    expect(third.response.status).toBe(429);
    expect(Number(third.response.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(third.response.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(await json(third.response)).toMatchObject({
      error: { code: "rate_limit_exceeded", type: "rate_limit_error" },
    });
  });

  it.each([429, 500, 400])(
    "keeps upstream's own headers alone on upstream's %i, never mixed with the proxy's",
    async (status) => {
      const upstreamHeaders = {
        "retry-after": "2",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-remaining-tokens": "0",
      };
      mockUpstream(() => openaiJson({ error: { message: "slow down", type: "requests" } }, status, upstreamHeaders));
      const { response } = await call(postJson("/v1/chat/completions", CHAT, newClient()), { RATE_LIMIT_RPM: "60" });
      expect(response.status).toBe(status);
      for (const [name, value] of Object.entries(upstreamHeaders)) expect(response.headers.get(name)).toBe(value);
    },
  );

  it("puts the proxy's own headers on its own errors after admission", async () => {
    mockUpstream(() => {
      throw new TypeError("fetch failed");
    });
    const { response } = await call(postJson("/v1/chat/completions", CHAT, newClient()), { RATE_LIMIT_RPM: "60" });
    expect(response.status).toBe(502);
    expect(response.headers.get("x-ratelimit-limit-requests")).toBe("60");
    expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("59");
  });

  it("counts a request whatever its outcome", async () => {
    mockUpstream(() => openaiJson({ error: { message: "bad" } }, 400));
    const client = newClient();
    const vars = { RATE_LIMIT_RPM: "1" };
    expect((await call(postJson("/v1/chat/completions", CHAT, client), vars)).response.status).toBe(400);
    expect((await call(postJson("/v1/chat/completions", CHAT, client), vars)).response.status).toBe(429);
  });

  it("holds a client to MAX_CONCURRENT_STREAMS and frees the slot when the client cancels", async () => {
    const first = controllableSse();
    const second = controllableSse();
    const responses = [first.response, second.response];
    mockUpstream(() => responses.shift() ?? openaiJson({}));
    const client = newClient();
    const vars = { MAX_CONCURRENT_STREAMS: "1" };
    const firstRequest = leavable(postJson("/v1/chat/completions", STREAM, client));
    const open = await call(firstRequest.request, vars);
    expect(open.response.status).toBe(200);
    const refused = await call(postJson("/v1/chat/completions", STREAM, client), vars);
    expect(refused.response.status).toBe(429);
    expect(await text(refused.response)).toContain("concurrent streams");
    // A non-streaming request is not held back by the stream limit.
    expect((await call(postJson("/v1/chat/completions", CHAT, client), vars)).response.status).toBe(200);

    await open.response.body?.cancel();
    firstRequest.leave();
    await first.cancellation;
    await open.settled();
    const after = await call(postJson("/v1/chat/completions", STREAM, client), vars);
    expect(after.response.status).toBe(200);
    second.end();
    await text(after.response);
  });

  it("frees a stream slot when upstream breaks off", async () => {
    const broken = controllableSse();
    const next = controllableSse();
    const responses = [broken.response, next.response];
    mockUpstream(() => responses.shift() ?? openaiJson({}));
    const client = newClient();
    const vars = { MAX_CONCURRENT_STREAMS: "1" };
    const cut = await call(postJson("/v1/chat/completions", STREAM, client), vars);
    broken.send("data: {}\n\n");
    broken.fail(new Error("reset"));
    expect(await text(cut.response)).toContain("upstream_interrupted");
    await cut.settled();
    const after = await call(postJson("/v1/chat/completions", STREAM, client), vars);
    expect(after.response.status).toBe(200);
    next.end();
    await text(after.response);
  });

  it("counts nothing with RATE_LIMIT_RPM=0 and MAX_CONCURRENT_STREAMS=0", async () => {
    mockUpstream(() => openaiJson({ ok: true }));
    const client = newClient();
    const vars = { RATE_LIMIT_RPM: "0", MAX_CONCURRENT_STREAMS: "0" };
    const results = await Promise.all(
      Array.from({ length: 30 }, () => call(postJson("/v1/chat/completions", CHAT, client), vars)),
    );
    expect(results.every((r) => r.response.status === 200)).toBe(true);
    expect(results[0]?.response.headers.get("x-ratelimit-limit-requests")).toBeNull();
  });

  it("keeps preflights and /health away from the limiter", async () => {
    const client = newClient();
    const vars = { RATE_LIMIT_RPM: "1" };
    for (let i = 0; i < 3; i++) {
      expect((await call(new Request("http://proxy.test/health", { headers: client }), vars)).response.status).toBe(
        200,
      );
    }
    mockUpstream(() => openaiJson({}));
    expect((await call(postJson("/v1/chat/completions", CHAT, client), vars)).response.status).toBe(200);
  });
});

describe("dollar budgets and the spend ceiling", () => {
  // gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens.
  const USAGE = { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500 };
  const COST = (1000 * 0.15 + 500 * 0.6) / 1e6;

  it("tells the client what is left of its dollar budget on every answer, and refuses once it is spent", async () => {
    mockUpstream(() => openaiJson({ usage: USAGE }));
    const client = newClient();
    // Two requests, and less than a third one's reservation.
    const vars = { DAILY_BUDGET_USD: String(2 * COST + 0.00005) };
    const request = () => call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 100 }, client), vars);
    const first = await request();
    expect(first.response.status).toBe(200);
    expect(first.response.headers.get("x-budget-limit-usd")).toBe(vars.DAILY_BUDGET_USD);
    expect(first.response.headers.get("x-budget-reset")).toMatch(/^(\d+h)?(\d+m)?[\d.]+s$/);
    await text(first.response);
    await first.settled();
    const second = await request();
    // What is left: the budget less the first request's real cost and what this one holds reserved
    // (its input at most, a token a byte, and its 100 output tokens), to the millionth of a dollar.
    const reserved = (JSON.stringify({ ...CHAT, max_tokens: 100 }).length * 0.15 + 100 * 0.6) / 1e6;
    const left = Math.floor((2 * COST + 0.00005 - COST - reserved) * 1e6) / 1e6;
    expect(Number(second.response.headers.get("x-budget-remaining-usd"))).toBeCloseTo(left, 6);
    await text(second.response);
    await second.settled();
    const third = await request();
    expect(third.response.status).toBe(429);
    expect(Number(third.response.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(third.response.headers.get("x-budget-remaining-usd")).not.toBeNull();
    const body = await json<{ error: { code: string; message: string } }>(third.response);
    expect(body.error.code).toBe("insufficient_quota");
    expect(body.error.message).toMatch(/daily budget left, and this request may cost up to \$/);
  });

  it("stops every client together once the proxy's ceiling is reached, naming only that limit", async () => {
    const upstream = mockUpstream(() => openaiJson({ usage: USAGE }));
    const vars = { DAILY_SPEND_LIMIT_USD: "0.05", SPEND_LEASE_SECONDS: "0.2" };
    // Another isolate holds all that is left of the ceiling.
    const ceiling = ceilingFor(env.SPEND_CEILING);
    const day = new Date().toISOString().slice(0, 10);
    const other = await ceiling.renew({ lease: null, day, spentUsd: 0, wantUsd: 1000, needUsd: 0 }, 0.05, 5_000);
    try {
      for (const client of [newClient(), newClient()]) {
        const { response } = await call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 100 }, client), vars);
        expect(response.status).toBe(429);
        expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
        const body = await json<{ error: { code: string; message: string } }>(response);
        expect(body.error).toMatchObject({ code: "insufficient_quota" });
        expect(body.error.message).toContain("has reached its daily spending limit for all its users");
        expect(body.error.message).not.toMatch(/\$\d/);
      }
    } finally {
      await ceiling.renew({ lease: other.lease, day, spentUsd: 0, wantUsd: 0, needUsd: 0 }, 0.05, 5_000);
    }
    expect(upstream).toHaveLength(0);
  });

  it("refuses at once a request that could not fit in the whole ceiling, without asking it", async () => {
    const upstream = mockUpstream(() => openaiJson({ usage: USAGE }));
    // gpt-4o reserves about $0.04 for 4 096 output tokens: more than the whole ceiling.
    const dear = { model: "gpt-4o", messages: [{ role: "user", content: "hi" }], max_tokens: 4096 };
    const { response } = await call(postJson("/v1/chat/completions", dear, newClient()), {
      DAILY_SPEND_LIMIT_USD: "0.01",
    });
    expect(response.status).toBe(429);
    const body = await json<{ error: { message: string } }>(response);
    expect(body.error.message).toMatch(/more than this proxy's daily spending limit for all its users/);
    expect(upstream).toHaveLength(0);
  });

  it("takes nothing from the ceiling for a client over its own limits", async () => {
    mockUpstream(() => openaiJson({ usage: USAGE }));
    const ceiling = ceilingFor(env.SPEND_CEILING);
    const day = new Date().toISOString().slice(0, 10);
    const before = await ceiling.stateOf(day);
    const client = newClient();
    const vars = { DAILY_SPEND_LIMIT_USD: "5", SPEND_LEASE_SECONDS: "0.2", DAILY_BUDGET_USD: "0.00001" };
    const { response } = await call(postJson("/v1/chat/completions", { ...CHAT, max_tokens: 100 }, client), vars);
    expect(response.status).toBe(429);
    expect(await ceiling.stateOf(day)).toEqual(before);
  });

  it("settles what a request cost at the ceiling, once its slice comes back", async () => {
    mockUpstream(() => openaiJson({ usage: USAGE }));
    const ceiling = ceilingFor(env.SPEND_CEILING);
    const day = new Date().toISOString().slice(0, 10);
    const before = await ceiling.stateOf(day);
    const vars = { DAILY_SPEND_LIMIT_USD: "5", SPEND_LEASE_SECONDS: "0.2" };
    const { response, settled } = await call(
      postJson("/v1/chat/completions", { ...CHAT, max_tokens: 100 }, newClient()),
      vars,
    );
    expect(response.status).toBe(200);
    await text(response);
    // The request's work ends once the isolate's idle slice has been returned with what it spent.
    await settled();
    const after = await ceiling.stateOf(day);
    expect(after.spentUsd - before.spentUsd).toBeCloseTo(COST, 12);
    expect(after.lentUsd).toBe(0);
  });
});
