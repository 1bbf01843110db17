import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv, Env } from "../env";
import { notFound, ProxyError, unauthorized } from "../errors";
import { bearerCredential, digest, sameDigest } from "../lib/secrets";
import { parseReportQuery, usageReport } from "../usage/report";

/**
 * `GET /admin/usage?from=&to=&group_by=client|model|day`: the usage report as JSON, for whoever
 * holds `ADMIN_TOKEN`. Without an admin token the route does not exist (the app's own 404). Mount
 * it on the app before its catch-alls; errors are thrown as `ProxyError` for the app's `onError`.
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
  return admin;
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
