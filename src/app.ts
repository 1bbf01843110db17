import { Hono } from "hono";
import { getConfig } from "./config";
import type { AppEnv } from "./env";
import { asProxyError, notFound, ProxyError, renderError } from "./errors";
import { accounting } from "./middleware/accounting";
import { bodyLimit } from "./middleware/body";
import { clientAuth } from "./middleware/client-auth";
import { configured } from "./middleware/configured";
import { cors } from "./middleware/cors";
import { policy } from "./middleware/policy";
import { rateLimit } from "./middleware/rate-limit";
import { requestId } from "./middleware/request-id";
import { adminRoutes } from "./routes/admin";
import { openaiPassThrough } from "./routes/openai";
import { seedChat } from "./routes/seed-chat";

/**
 * The proxy as a Hono app, its pipeline in order: request id → accounting (which records every
 * request once its outcome is known) → CORS and origin → on proxied routes: configuration check →
 * client authentication → body size limit → policy (the one step that rewrites the body) → rate
 * limit and budget admission → route (the original `POST /` or the `/v1/*` pass-through) →
 * forward upstream → the response, and the outcome back to accounting.
 */
export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(requestId());
  app.use(accounting());
  app.use(cors());

  app.get("/health", (c) => c.json({ status: "ok", auth: getConfig(c.env).auth.mode }));
  app.post("/", configured(), clientAuth(), bodyLimit(), policy("seed"), rateLimit(), seedChat);
  app.on(
    ["GET", "POST", "DELETE"],
    "/v1/*",
    configured(),
    clientAuth(),
    bodyLimit(),
    policy("openai"),
    rateLimit(),
    openaiPassThrough,
  );
  app.route("/", adminRoutes());

  app.all("/", () => methodNotAllowed("POST, OPTIONS"));
  app.all("/health", () => methodNotAllowed("GET, OPTIONS"));
  app.all("/v1/*", () => methodNotAllowed("GET, POST, DELETE, OPTIONS"));
  // Rendered here, not thrown: Hono calls notFound outside the steps' error handling, so a throw
  // would skip what the steps add on the way out (CORS headers, the request id).
  app.notFound((c) => {
    const error = notFound(c.req.method, c.req.path);
    c.error = error;
    return renderError(error, c.req.path);
  });

  app.onError((error, c) => {
    if (!(error instanceof ProxyError)) {
      console.error(JSON.stringify({ level: "error", msg: "unexpected error", error: String(error) }));
    }
    return renderError(asProxyError(error), c.req.path);
  });
  return app;
}

function methodNotAllowed(allow: string): never {
  throw new ProxyError(405, `method not allowed; use ${allow}`, { code: "method_not_allowed", headers: { allow } });
}
