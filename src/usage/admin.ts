import { Hono, type MiddlewareHandler } from "hono";
import type { Env } from "../env";
import { ProxyError } from "../errors";
import type { AppEnv } from "../types";
import { parseReportQuery, usageReport } from "./report";

const encoder = new TextEncoder();

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
    if (token === undefined) {
      throw new ProxyError(404, `${c.req.method} ${c.req.path} is not a route of this proxy`, { code: "unknown_url" });
    }
    const presented = /^Bearer[ \t]+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1]?.trim() ?? "";
    // RFC 6750: a request without a credential gets the bare challenge, a refused one `invalid_token`.
    if (presented === "") {
      throw unauthorized("Missing bearer credential: send Authorization: Bearer <ADMIN_TOKEN>", "Bearer");
    }
    if (!(await sameSecret(presented, token))) {
      throw unauthorized("Incorrect admin token provided.", 'Bearer error="invalid_token"');
    }
    await next();
  };
}

/** `ADMIN_TOKEN`, trimmed; undefined when unset or empty. */
function adminToken(env: Env): string | undefined {
  return env.ADMIN_TOKEN?.trim() || undefined;
}

/** Compares SHA-256 digests, so the comparison takes the same time whatever was sent and however much of it matched. */
async function sameSecret(presented: string, secret: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(presented)),
    crypto.subtle.digest("SHA-256", encoder.encode(secret)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

function unauthorized(message: string, challenge: string): ProxyError {
  return new ProxyError(401, message, { code: "invalid_api_key", headers: { "www-authenticate": challenge } });
}
