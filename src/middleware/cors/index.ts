import type { MiddlewareHandler } from "hono";
import { getConfig, isOriginAllowed } from "../../config";
import type { AppEnv } from "../../env";
import { ProxyError } from "../../errors";
import { EXPOSED_HEADERS } from "../../proxy/client-headers";

const ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS";
const DEFAULT_ALLOWED_HEADERS = "authorization, content-type";
const MAX_AGE = "86400";

/**
 * CORS for real browsers, driven by `ALLOWED_ORIGINS`: answers every preflight (`OPTIONS`)
 * itself with 204, refuses a disallowed `Origin` with 403 and no CORS headers, and adds
 * `Access-Control-Allow-Origin`, `Access-Control-Expose-Headers` and `Vary: Origin` to every
 * other response, errors, 404s and streams included. Requests without `Origin` (servers, curl) pass.
 *
 * @example
 * app.use(cors());
 */
export function cors(): MiddlewareHandler<AppEnv> {
  return async function corsMiddleware(c, next) {
    const { origins } = getConfig(c.env).cors;
    const origin = c.req.header("origin");
    const allowed = origin === undefined || isOriginAllowed(origins, origin);
    const allowOrigin = origins.any ? "*" : origin;

    if (c.req.method === "OPTIONS") {
      const headers = new Headers({ allow: ALLOWED_METHODS });
      if (!origins.any) headers.set("vary", "Origin, Access-Control-Request-Headers");
      else headers.set("vary", "Access-Control-Request-Headers");
      if (origin === undefined) return new Response(null, { status: 204, headers });
      if (!allowed) return new Response(null, { status: 403, headers });
      headers.set("access-control-allow-origin", allowOrigin ?? "*");
      headers.set("access-control-allow-methods", ALLOWED_METHODS);
      headers.set(
        "access-control-allow-headers",
        c.req.header("access-control-request-headers") || DEFAULT_ALLOWED_HEADERS,
      );
      headers.set("access-control-max-age", MAX_AGE);
      return new Response(null, { status: 204, headers });
    }

    if (!allowed) {
      throw new ProxyError(403, `origin ${origin} is not allowed to use this proxy`, {
        type: "permission_error",
        code: "origin_not_allowed",
        headers: origins.any ? {} : { vary: "Origin" },
      });
    }

    await next();

    const headers = c.res.headers;
    if (!origins.any) headers.append("vary", "Origin");
    if (allowOrigin !== undefined) {
      headers.set("access-control-allow-origin", allowOrigin);
      headers.set("access-control-expose-headers", EXPOSED_HEADERS);
    }
  };
}
