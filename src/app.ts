import { Hono } from "hono";
import { type Config, getConfig } from "./config";
import type { AppEnv } from "./env";
import { notFound, ProxyError, renderError } from "./errors";
import { accounting } from "./middleware/accounting";
import { bodyLimit } from "./middleware/body";
import { clientAuth } from "./middleware/client-auth";
import { configured } from "./middleware/configured";
import { cors } from "./middleware/cors";
import { policy } from "./middleware/policy";
import { rateLimit } from "./middleware/rate-limit";
import { requestId } from "./middleware/request-id";
import { upstreamHealth } from "./proxy/pool";
import { adminRoutes } from "./routes/admin";
import { me } from "./routes/me";
import { openaiPassThrough } from "./routes/openai";
import { seedChat } from "./routes/seed-chat";
import { sessionRoutes } from "./routes/session";

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

  app.get("/health", (c) => c.json(health(getConfig(c.env))));
  app.get("/me", configured(), clientAuth(), me);
  app.route("/", sessionRoutes());
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
  app.all("/me", () => methodNotAllowed("GET, OPTIONS"));
  app.all("/session", () => methodNotAllowed("POST, OPTIONS"));
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
    return renderError(error, c.req.path);
  });
  return app;
}

/**
 * `GET /health`: up (`degraded` when an upstream's key was refused or all its keys rest, as this
 * isolate has seen; `upstreams` says which, never which key), and which ways to call are on
 * (`modes`: `open`, `keys`, `tokens`, `sessions`),
 * with the Turnstile site key (and action, when `TURNSTILE_ACTION` is set) a page renders its widget
 * with for a session. `auth` is the older single word.
 */
function health(config: Config) {
  const { mode } = config.auth;
  const modes: string[] = mode === "open" ? ["open"] : mode.split("+");
  const sessions = config.sessions;
  if (sessions.enabled) modes.push("sessions");
  const upstreams = config.upstream.configured ? upstreamHealth(config.upstream.upstreams) : [];
  const degraded = upstreams.some((upstream) => upstream.status !== "ok");
  return {
    status: degraded ? "degraded" : "ok",
    auth: mode,
    modes,
    ...(upstreams.length > 0 ? { upstreams } : {}),
    ...(sessions.enabled && sessions.siteKey !== null
      ? { turnstile: { site_key: sessions.siteKey, ...(sessions.action !== null ? { action: sessions.action } : {}) } }
      : {}),
  };
}

function methodNotAllowed(allow: string): never {
  throw new ProxyError(405, `method not allowed; use ${allow}`, { code: "method_not_allowed", headers: { allow } });
}
