import { afterEach, describe, expect, it, vi } from "vitest";
import { call, json, mockUpstream, openaiJson, postJson, proxyRequest } from "../../testing";
import { networkOf } from ".";

const APP = "https://chat.example.com";
const SECRET = "turnstile-secret-for-the-session-tests";
const VARS = {
  TURNSTILE_SECRET_KEY: SECRET,
  TURNSTILE_SITE_KEY: "1x00000000000000000000AA",
  PROXY_JWT_SECRET: "a-session-signing-secret-of-at-least-32-chars",
  ALLOWED_ORIGINS: APP,
  SESSION_DAILY_USD: "0.05",
  SESSION_RPM: "6",
};
const SITEVERIFY = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

let ip = 0;
/** A visitor of its own for each test: mints are counted per IP. */
const visitor = () => ({ "cf-connecting-ip": `203.0.113.${++ip}`, origin: APP });

type Verdict = { success: boolean; hostname?: string; action?: string; "error-codes"?: string[] };

/** A fake siteverify that answers `verdict`, and the OpenAI upstream behind the proxy. */
function turnstile(verdict: Verdict | ((form: URLSearchParams) => Verdict) | Response) {
  const forms: URLSearchParams[] = [];
  const requests = mockUpstream(async (request) => {
    if (request.url !== SITEVERIFY) return openaiJson({ usage: { prompt_tokens: 10, completion_tokens: 5 } });
    const form = new URLSearchParams(await request.text());
    forms.push(form);
    if (verdict instanceof Response) return verdict;
    return Response.json(typeof verdict === "function" ? verdict(form) : verdict);
  });
  return { forms, requests };
}

const PASS: Verdict = { success: true, hostname: "chat.example.com", action: "chat" };

async function mint(
  headers: Record<string, string>,
  vars: Record<string, string> = {},
  body: unknown = { turnstile: "XXXX.DUMMY.TOKEN.XXXX" },
) {
  const { response } = await call(postJson("/session", body, headers), { ...VARS, ...vars });
  return {
    response,
    body: await json<Record<string, unknown> & { error?: { code: string; message: string } }>(response),
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("POST /session", () => {
  it("mints a short-lived token for a verified visitor, which then calls the API from its page", async () => {
    const fake = turnstile(PASS);
    const headers = visitor();
    const { response, body } = await mint(headers);
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe(APP);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(body).toMatchObject({ token: expect.any(String), limits: { rpm: 6, usd_per_day: 0.05 } });
    const now = Date.now() / 1000;
    expect(body.expires_at).toBeGreaterThan(now + 890);
    expect(body.expires_at).toBeLessThanOrEqual(now + 901);
    // Siteverify was asked with the secret, the token, the visitor's IP and an idempotency key.
    expect(Object.fromEntries(fake.forms[0] ?? [])).toEqual({
      secret: SECRET,
      response: "XXXX.DUMMY.TOKEN.XXXX",
      remoteip: headers["cf-connecting-ip"],
      idempotency_key: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });

    const auth = { authorization: `Bearer ${body.token}`, origin: APP };
    const chat = await call(
      postJson("/v1/chat/completions", { model: "gpt-4o-mini", messages: [], max_tokens: 10 }, auth),
      VARS,
    );
    expect(chat.response.status).toBe(200);
    expect(chat.response.headers.get("x-budget-limit-usd")).toBe("0.05");
    const me = await call(proxyRequest("/me", { headers: auth }), VARS);
    expect(await json(me.response)).toMatchObject({
      kind: "session",
      name: expect.stringMatching(/^session:[0-9a-f]{32}$/),
      expires_at: body.expires_at,
      limits: { requests_per_minute: 6, usd_per_day: 0.05 },
      remaining: { usd_today: expect.any(Number) },
    });
  });

  it("refuses the session token from another origin, and from no origin", async () => {
    turnstile(PASS);
    const { body } = await mint(visitor());
    for (const origin of ["https://evil.example.com", undefined]) {
      const headers: Record<string, string> = { authorization: `Bearer ${body.token}` };
      if (origin !== undefined) headers.origin = origin;
      const { response } = await call(
        postJson("/v1/chat/completions", { model: "gpt-4o-mini", messages: [] }, headers),
        VARS,
      );
      expect(response.status, String(origin)).toBe(403);
    }
  });

  it.each([
    [
      "siteverify says no",
      { success: false, "error-codes": ["invalid-input-response"] },
      403,
      "invalid-input-response",
    ],
    ["the token was already spent", { success: false, "error-codes": ["timeout-or-duplicate"] }, 403, "already used"],
    ["the token is for another site", { ...PASS, hostname: "evil.example.com" }, 403, "another site"],
    ["the token is for another action", { ...PASS, action: "login" }, 403, "another action"],
  ])("refuses a visitor when %s, with no token", async (_, verdict, status, says) => {
    turnstile(verdict);
    const { response, body } = await mint(visitor(), { TURNSTILE_ACTION: "chat" });
    expect(response.status).toBe(status);
    expect(body.error).toMatchObject({ code: "turnstile_failed", message: expect.stringContaining(says) });
    expect(body.token).toBeUndefined();
  });

  it("answers 503 with Retry-After when siteverify fails or is unreachable, never a session", async () => {
    turnstile(new Response("oops", { status: 500 }));
    const failed = await mint(visitor());
    expect(failed.response.status).toBe(503);
    expect(failed.response.headers.get("retry-after")).toBe("5");
    expect(failed.body.error?.code).toBe("turnstile_unavailable");

    mockUpstream(() => {
      throw new TypeError("network down");
    });
    expect((await mint(visitor())).response.status).toBe(503);
  });

  it("answers 503 when siteverify is slow: it waits 5 seconds, no longer", async () => {
    let asked: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      asked = resolve;
    });
    mockUpstream(
      (request) =>
        new Promise<Response>((_, reject) => {
          request.signal.addEventListener("abort", () => reject(request.signal.reason));
          asked();
        }),
    );
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const pending = mint(visitor());
    await reached;
    vi.advanceTimersByTime(5_000);
    const { response, body } = await pending;
    expect(response.status).toBe(503);
    expect(body.error?.code).toBe("turnstile_unavailable");
  });

  it("refuses a page that is not on ALLOWED_ORIGINS, and a body without a token, before asking siteverify", async () => {
    const fake = turnstile(PASS);
    const stranger = await mint({ ...visitor(), origin: "https://evil.example.com" });
    expect(stranger.response.status).toBe(403);
    expect(stranger.body.error?.code).toBe("origin_not_allowed");
    // An Origin no browser sends (a session would be bound to it) is refused too, never a 500.
    for (const origin of ["null", "not an origin", "https://app.example.com/path"]) {
      const odd = await mint({ ...visitor(), origin });
      expect(odd.response.status, `${origin}: ${JSON.stringify(odd.body)}`).toBe(403);
    }
    for (const body of [{}, { turnstile: "" }, { turnstile: 42 }, { turnstile: "x".repeat(2049) }, "not json"]) {
      expect((await mint(visitor(), {}, body)).response.status).toBe(400);
    }
    expect(fake.forms).toHaveLength(0);
  });

  it("limits mints per IP to SESSION_MINTS_PER_HOUR, then 429 with Retry-After", async () => {
    turnstile(PASS);
    const headers = visitor();
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await mint(headers, { SESSION_MINTS_PER_HOUR: "3" })).response.status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await mint(headers, { SESSION_MINTS_PER_HOUR: "3" });
    expect(Number(refused.response.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(refused.body.error?.code).toBe("rate_limit_exceeded");
    // Another visitor is not held back.
    expect((await mint(visitor(), { SESSION_MINTS_PER_HOUR: "3" })).response.status).toBe(200);
  });

  it("counts only verified mints: failed attempts never lock out the people behind an address", async () => {
    turnstile({ success: false, "error-codes": ["invalid-input-response"] });
    const headers = visitor();
    for (let i = 0; i < 5; i++)
      expect((await mint(headers, { SESSION_MINTS_PER_HOUR: "2" })).response.status).toBe(403);
    turnstile(PASS);
    expect((await mint(headers, { SESSION_MINTS_PER_HOUR: "2" })).response.status).toBe(200);
  });

  it("counts an IPv6 visitor by its /64: rotating addresses within it does not get more sessions", async () => {
    turnstile(PASS);
    const net = `2001:db8:${(++ip).toString(16)}:7`;
    const statuses = [];
    for (const host of ["1", "2", "abcd:1", "ffff:ffff:ffff:ffff"]) {
      const headers = { "cf-connecting-ip": `${net}:${host.includes(":") ? host : `::${host}`}`, origin: APP };
      statuses.push((await mint(headers, { SESSION_MINTS_PER_HOUR: "3" })).response.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(networkOf("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(networkOf("2001:0db8::1")).toBe("2001:db8:0:0::/64");
    expect(networkOf("::1")).toBe("0:0:0:0::/64");
    expect(networkOf("203.0.113.9")).toBe("203.0.113.9");
  });

  it("does not exist without TURNSTILE_SECRET_KEY; /health lists sessions and the site key when it does", async () => {
    const { response } = await call(postJson("/session", { turnstile: "x" }, visitor()));
    expect(response.status).toBe(404);
    const health = await call(proxyRequest("/health"), VARS);
    expect(await json(health.response)).toMatchObject({
      modes: expect.arrayContaining(["tokens", "sessions"]),
      turnstile: { site_key: "1x00000000000000000000AA" },
    });
  });
});
