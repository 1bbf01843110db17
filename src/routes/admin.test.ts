import { env } from "cloudflare:test";
import { Hono } from "hono";
import { beforeAll, describe, expect, it } from "vitest";
import type { AppEnv, Env } from "../env";
import { asProxyError, notFound, renderError } from "../errors";
import { writeUsage } from "../usage/ledger";
import { adminRoutes } from "./admin";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef";

/** The admin routes on a tiny app that renders errors as the proxy's app does, including its 404. */
function app(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.route("/", adminRoutes());
  app.notFound((c) => renderError(notFound(c.req.method, c.req.path), c.req.path));
  app.onError((error, c) => renderError(asProxyError(error), c.req.path));
  return app;
}

function get(path: string, headers: Record<string, string> = {}, vars: Record<string, string> = { ADMIN_TOKEN }) {
  return app().request(path, { headers }, { ...env, ...vars } as Env);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("GET /admin/usage", () => {
  beforeAll(async () => {
    const base = {
      route: "/v1/chat/completions",
      status: 200,
      cachedTokens: 0,
      reasoningTokens: 0,
      durationMs: 100,
      ttftMs: 50,
      basis: "reported" as const,
      costEstimated: false,
    };
    await writeUsage(env.USAGE_DB, {
      ...base,
      ts: Date.UTC(2024, 6, 1, 12),
      requestId: "req_admin_1",
      client: "web",
      clientKind: "key",
      model: "gpt-4o-mini",
      promptTokens: 10,
      completionTokens: 5,
      totalTokens: 15,
      costUsd: 0.0000045,
      incomplete: false,
    });
    await writeUsage(env.USAGE_DB, {
      ...base,
      ts: Date.UTC(2024, 6, 1, 13),
      requestId: "req_admin_2",
      client: "alice",
      clientKind: "token",
      model: "my-model",
      promptTokens: 7,
      completionTokens: 3,
      totalTokens: 10,
      costUsd: null,
      incomplete: true,
    });
  });

  it("does not exist when ADMIN_TOKEN is unset or empty: the app's own 404", async () => {
    const unknown = await get("/admin/nothing-here", bearer(ADMIN_TOKEN), {});
    for (const token of [undefined, "", "   "]) {
      const vars: Record<string, string> = token === undefined ? {} : { ADMIN_TOKEN: token };
      const response = await get("/admin/usage", bearer(ADMIN_TOKEN), vars);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({
        error: {
          message: "GET /admin/usage is not a route of this proxy",
          type: "invalid_request_error",
          param: null,
          code: "unknown_url",
        },
      });
    }
    expect(unknown.status).toBe(404);
  });

  it("refuses a request without a token with 401", async () => {
    const requests: Record<string, string>[] = [
      {},
      { authorization: "Bearer " },
      { authorization: `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}` },
    ];
    for (const headers of requests) {
      const response = await get("/admin/usage", headers);
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toBe("Bearer");
      expect(await response.json()).toMatchObject({
        error: {
          message: "Missing bearer credential: send Authorization: Bearer <ADMIN_TOKEN>",
          code: "invalid_api_key",
        },
      });
    }
  });

  it("refuses a wrong token with 401, without echoing either token", async () => {
    for (const wrong of [
      `${ADMIN_TOKEN.slice(0, -1)}X`,
      ADMIN_TOKEN.slice(0, 8),
      `${ADMIN_TOKEN}0`,
      "x".repeat(4096),
    ]) {
      const response = await get("/admin/usage", bearer(wrong));
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
      const body = await response.text();
      expect(JSON.parse(body)).toMatchObject({
        error: { message: "Incorrect admin token provided.", code: "invalid_api_key" },
      });
      expect(body).not.toContain(ADMIN_TOKEN.slice(0, 8));
    }
  });

  it("answers the report as JSON for the right token", async () => {
    const response = await get("/admin/usage?from=2024-07-01&to=2024-07-01&group_by=client", bearer(ADMIN_TOKEN));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(await response.json()).toEqual({
      from: "2024-07-01T00:00:00.000Z",
      to: "2024-07-02T00:00:00.000Z",
      group_by: "client",
      rows: [
        {
          key: "web",
          requests: 1,
          prompt_tokens: 10,
          completion_tokens: 5,
          total_tokens: 15,
          cost_usd: 0.0000045,
          incomplete: 0,
          cost_estimated: 0,
        },
        {
          key: "alice",
          requests: 1,
          prompt_tokens: 7,
          completion_tokens: 3,
          total_tokens: 10,
          cost_usd: null,
          incomplete: 1,
          cost_estimated: 0,
        },
      ],
    });
  });

  it("accepts the token with surrounding spaces in the secret and the scheme in any case", async () => {
    const response = await get(
      "/admin/usage?from=2024-07-01&to=2024-07-01",
      { authorization: `bearer ${ADMIN_TOKEN}` },
      {
        ADMIN_TOKEN: ` ${ADMIN_TOKEN}\n`,
      },
    );
    expect(response.status).toBe(200);
  });

  it("defaults to today, by client", async () => {
    const response = await get("/admin/usage", bearer(ADMIN_TOKEN));
    const body = await response.json<{ from: string; to: string; group_by: string }>();
    expect(body.group_by).toBe("client");
    expect(body.from).toBe(`${new Date().toISOString().slice(0, 10)}T00:00:00.000Z`);
  });

  it("answers 400 naming a bad parameter", async () => {
    const response = await get("/admin/usage?group_by=route", bearer(ADMIN_TOKEN));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({
      error: { message: 'group_by must be client, model, day or upstream (got "route")', param: "group_by" },
    });
  });

  it("checks the token before the parameters", async () => {
    const response = await get("/admin/usage?group_by=route", bearer("wrong"));
    expect(response.status).toBe(401);
  });
});

describe("the dashboard and GET /admin/limits", () => {
  it("serves the dashboard page and its files, which hold no data, only when ADMIN_TOKEN is set", async () => {
    const page = await get("/admin");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(await page.text()).toContain("vendor/uPlot.iife.min.js");
    for (const file of ["/admin/app.js", "/admin/vendor/uPlot.iife.min.js", "/admin/style.css"]) {
      expect((await get(file)).status, file).toBe(200);
    }
    expect((await get("/admin/secret.txt")).status).toBe(404);
    expect((await get("/admin", {}, {})).status).toBe(404);
  });

  it("answers today's use of the ceiling and of the keys' budgets, with the admin token only", async () => {
    const vars = {
      ADMIN_TOKEN,
      PROXY_KEYS: "web:pk_web_0123456789abcdef,backend:pk_backend_0123456789ab",
      PROXY_KEY_LIMITS: "web:usd_per_day=2",
      DAILY_SPEND_LIMIT_USD: "25",
    };
    expect((await get("/admin/limits", {}, vars)).status).toBe(401);
    const response = await get("/admin/limits", bearer(ADMIN_TOKEN), vars);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      day: new Date().toISOString().slice(0, 10),
      ceiling: { limit_usd: 25, spent_usd: expect.any(Number), held_usd: expect.any(Number) },
      budgets: [{ client: "key:web", tokens: null, usd: { limit: 2, remaining: expect.any(Number) } }],
    });
  });
});
