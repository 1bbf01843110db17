import { Hono, type MiddlewareHandler } from "hono";
import { getConfig, isReady } from "./config";
import { ProxyError, renderError } from "./errors";
import { bodyLimit } from "./middleware/body-limit";
import { clientAuth } from "./middleware/client-auth";
import { cors } from "./middleware/cors";
import { policy } from "./middleware/policy";
import { rateLimit } from "./middleware/rate-limit";
import { requestContext } from "./middleware/request-context";
import { openaiPassThrough } from "./routes/openai";
import { seedChat } from "./routes/seed-chat";
import type { AppEnv } from "./types";
import { adminRoutes } from "./usage/admin";

/**
 * The proxy as a Hono app, its pipeline in order: request id and log line → CORS and origin →
 * (on proxied routes) configuration check → client authentication → body size limit → rate limit
 * → path, model and output policy → route (seed `POST /` or `/v1/*` pass-through) → forward
 * upstream → stream back.
 */
export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(requestContext());
  app.use(cors());

  app.get("/health", (c) => c.json({ status: "ok", auth: getConfig(c.env).auth.mode }));
  app.post("/", configured(), clientAuth(), bodyLimit(), rateLimit(), seedChat);
  app.on(
    ["GET", "POST", "DELETE"],
    "/v1/*",
    configured(),
    clientAuth(),
    bodyLimit(),
    rateLimit(),
    policy(),
    openaiPassThrough,
  );

  app.route("/", adminRoutes());

  app.all("/", () => methodNotAllowed("POST, OPTIONS"));
  app.all("/health", () => methodNotAllowed("GET, OPTIONS"));
  app.all("/v1/*", () => methodNotAllowed("GET, POST, DELETE, OPTIONS"));
  app.notFound((c) => {
    throw new ProxyError(404, `${c.req.method} ${c.req.path} is not a route of this proxy`, { code: "unknown_url" });
  });

  app.onError((error, c) => {
    const proxyError =
      error instanceof ProxyError
        ? error
        : new ProxyError(500, "the proxy failed unexpectedly", { code: "internal_error" });
    if (!(error instanceof ProxyError)) {
      console.error(JSON.stringify({ level: "error", msg: "unexpected error", error: String(error) }));
    }
    c.get("info").error = proxyError.code ?? proxyError.type;
    return renderError(proxyError, c.req.path);
  });
  return app;
}

/** Refuses to proxy, with every bad setting named, until the configuration is complete. */
function configured(): MiddlewareHandler<AppEnv> {
  return async function configuredMiddleware(c, next) {
    const config = getConfig(c.env);
    if (!isReady(config)) {
      console.error(JSON.stringify({ level: "error", msg: "proxy is not configured", errors: config.errors }));
      throw new ProxyError(500, `proxy is not configured: ${config.errors.join("; ")}`, {
        code: "proxy_not_configured",
        retryable: false,
      });
    }
    c.set("config", config);
    await next();
  };
}

function methodNotAllowed(allow: string): never {
  throw new ProxyError(405, `method not allowed; use ${allow}`, { code: "method_not_allowed", headers: { allow } });
}
