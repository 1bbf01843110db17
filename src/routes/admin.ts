import { Hono, type MiddlewareHandler } from "hono";
import { getConfig } from "../config";
import type { AppEnv, Env } from "../env";
import { notFound, ProxyError, unauthorized } from "../errors";
import { bearerCredential, digest, sameDigest } from "../lib/secrets";
import { utcDay } from "../lib/time";
import { ceilingFor } from "../limits/ceiling";
import { limiterFor, limiterLimits, limitsFor } from "../limits/client";
import { parseReportQuery, usageReport } from "../usage/report";

/** The dashboard's files, served from the Worker's static assets (`public/admin/`). */
const DASHBOARD_FILES = new Set([
  "/admin/app.js",
  "/admin/style.css",
  "/admin/vendor/uPlot.iife.min.js",
  "/admin/vendor/uPlot.min.css",
]);

/**
 * The operator's routes, for whoever holds `ADMIN_TOKEN` (without one they do not exist: the app's
 * own 404): `GET /admin/usage?from=&to=&group_by=client|model|day|upstream`, the usage report as
 * JSON; `GET /admin/limits`, today's use of the ceiling and of the keys' budgets; and `GET /admin`,
 * the dashboard page that charts both (static files in `public/admin/`). Mount it on the app before
 * its catch-alls; errors are thrown as `ProxyError` for the app's `onError`.
 *
 * @example
 * app.route("/", adminRoutes());
 * // curl -H "Authorization: Bearer $ADMIN_TOKEN" "https://proxy.example.com/admin/usage?group_by=model"
 */
export function adminRoutes(): Hono<AppEnv> {
  const admin = new Hono<AppEnv>();
  admin.get("/admin/usage", adminAuth(), async function usageReportRoute(c) {
    const db = c.env.USAGE_DB as D1Database | undefined;
    if (db === undefined) {
      throw new ProxyError(500, "the usage ledger is not configured: no USAGE_DB binding", {
        code: "proxy_not_configured",
        retryable: false,
      });
    }
    const { from, to, group_by } = c.req.query();
    const report = await usageReport(db, parseReportQuery({ from, to, group_by }, Date.now()));
    return c.json(report, 200, { "cache-control": "no-store" });
  });
  admin.get("/admin/limits", adminAuth(), async function limitsRoute(c) {
    return c.json(await limitsToday(c.env), 200, { "cache-control": "no-store" });
  });
  // The dashboard itself needs no token: it holds no data, and asks for the token before it fetches any.
  admin.get("/admin", (c) => dashboardFile(c.env, c.req.raw, "/admin/index.html"));
  admin.get("/admin/*", async (c, next) => {
    if (!DASHBOARD_FILES.has(c.req.path)) return next();
    return dashboardFile(c.env, c.req.raw, c.req.path);
  });
  return admin;
}

/** A file of the dashboard, from the static assets; 404 when the Worker has none (no `ASSETS` binding). */
async function dashboardFile(env: Env, request: Request, path: string): Promise<Response> {
  const assets = (env as Partial<Env>).ASSETS;
  if (assets === undefined || adminToken(env) === undefined)
    throw notFound(request.method, new URL(request.url).pathname);
  const response = await assets.fetch(new URL(path, request.url));
  const headers = new Headers(response.headers);
  headers.set("cache-control", "no-cache");
  headers.set("x-content-type-options", "nosniff");
  // The page loads only its own files and talks only to its own origin.
  headers.set("content-security-policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'");
  return new Response(response.body, { status: response.status, headers });
}

/** What `GET /admin/limits` answers: today's use of the spending ceiling and of each client key's daily budgets. */
export type LimitsToday = {
  day: string;
  ceiling: { limit_usd: number; spent_usd: number; held_usd: number } | null;
  budgets: {
    client: string;
    tokens: { limit: number; remaining: number } | null;
    usd: { limit: number; remaining: number } | null;
  }[];
};

/**
 * Today's use of the ceiling (spent, and held in slices by isolates for requests in flight) and of
 * the daily budgets of each client key that has one. Tokens and sessions, which come and go, show in
 * the usage report instead.
 */
async function limitsToday(env: Env): Promise<LimitsToday> {
  const config = getConfig(env);
  const day = utcDay(Date.now());
  const limitUsd = config.ceiling.dailyLimitUsd;
  const ceiling =
    limitUsd === null
      ? null
      : await ceilingFor(env.SPEND_CEILING)
          .stateOf(day)
          .then((state) => ({ limit_usd: limitUsd, spent_usd: state.spentUsd, held_usd: state.lentUsd }));
  const budgets = await Promise.all(
    [...config.auth.keys.keys()].map(async (name) => {
      const client = { id: `key:${name}`, kind: "key" as const, name };
      const limits = limitsFor(config.limits, client);
      if (limits.tokensPerDay === null && limits.usdPerDay === null) return null;
      const state = await limiterFor(env.RATE_LIMITER, client.id).peek(limiterLimits(limits));
      return { client: client.id, tokens: state.budget.tokens, usd: state.budget.usd };
    }),
  );
  return { day, ceiling, budgets: budgets.filter((budget) => budget !== null) };
}

/**
 * Lets through only `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.
 *
 * @throws ProxyError 404 `unknown_url` when `ADMIN_TOKEN` is unset or empty, exactly as for a path
 * that is not a route; 401 `invalid_api_key` for a missing or wrong token.
 */
export function adminAuth(): MiddlewareHandler<AppEnv> {
  return async function adminAuthMiddleware(c, next) {
    const token = adminToken(c.env);
    if (token === undefined) throw notFound(c.req.method, c.req.path);
    const presented = bearerCredential(c.req.header("authorization"));
    if (presented === null) {
      throw unauthorized("Missing bearer credential: send Authorization: Bearer <ADMIN_TOKEN>", "missing");
    }
    const [a, b] = await Promise.all([digest(presented), digest(token)]);
    if (!sameDigest(a, b)) throw unauthorized("Incorrect admin token provided.", "refused");
    await next();
  };
}

/** `ADMIN_TOKEN`, trimmed; undefined when unset or empty. */
function adminToken(env: Env): string | undefined {
  return env.ADMIN_TOKEN?.trim() || undefined;
}
