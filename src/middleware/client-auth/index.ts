import type { MiddlewareHandler } from "hono";
import type { Client } from "../../client";
import { type AuthSettings, JWT_SHAPE, type KeyDigest } from "../../config";
import type { AppEnv } from "../../env";
import { unauthorized } from "../../errors";
import { bearerCredential, digest, sameDigest } from "../../lib/secrets";
import { isWebSocketUpgrade, protocolCredential } from "../../proxy/websocket";
import { INCORRECT_KEY, MISSING_CREDENTIAL, originNotAllowed } from "./refuse";
import { verifyToken } from "./token";

declare module "hono" {
  interface ContextVariableMap {
    /** Who is calling, once authenticated. */
    client: Client;
  }
}

/** What `CF-Connecting-IP` can hold: an IPv4 or IPv6 address. Anything else (a local test, a forgery) is "unknown". */
const IP = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * Authenticates every request that reaches it (see `authenticate`) and sets `client` for the
 * steps after it. Needs `config`, so it runs after the configuration check; preflights never
 * reach it (CORS answers them first).
 *
 * @example
 * app.post("/", configured(), clientAuth(), rateLimit(), seedChat);
 */
export function clientAuth(): MiddlewareHandler<AppEnv> {
  return async function clientAuthMiddleware(c, next) {
    c.set("client", await authenticate(c.req.raw, c.get("config").auth));
    await next();
  };
}

/**
 * Authenticates a request. In open mode the client is its `CF-Connecting-IP`. Otherwise it needs
 * `Authorization: Bearer <credential>` (or, for a WebSocket, the `openai-insecure-api-key.<credential>`
 * subprotocol browsers use): a JWT (three base64url parts) is verified as a token when a JWT
 * secret is set; anything else is compared, in constant time, against every client key.
 *
 * @throws ProxyError 401 `invalid_api_key` for a missing, malformed, unknown, expired or wrongly
 * signed credential; 403 `origin_not_allowed` for a token used from another origin than its
 * `origin` claim (or without an `Origin` header). No message ever contains the credential.
 *
 * @example
 * const client = await authenticate(c.req.raw, config.auth);
 * // { id: "key:web", kind: "key", name: "web" }
 */
export async function authenticate(request: Request, settings: AuthSettings): Promise<Client> {
  if (settings.mode === "open") {
    const ip = clientIp(request) ?? "unknown";
    return { id: `ip:${ip}`, kind: "ip", name: ip };
  }

  // A browser's WebSocket cannot send headers: it passes its credential as a subprotocol instead.
  const credential =
    bearerCredential(request.headers.get("authorization")) ??
    (isWebSocketUpgrade(request) ? protocolCredential(request.headers) : null);
  if (credential === null) throw unauthorized(MISSING_CREDENTIAL, "missing");
  if (credential === "") throw unauthorized(INCORRECT_KEY, "refused");

  if (settings.jwtSecret !== null && JWT_SHAPE.test(credential)) {
    const { sub, ...claims } = await verifyToken(credential, settings.jwtSecret);
    if (claims.origin !== undefined) {
      const origin = request.headers.get("origin");
      if (origin !== claims.origin) throw originNotAllowed(claims.origin, origin);
    }
    return { id: `sub:${sub}`, kind: "token", name: sub, ...claims };
  }

  const name = await matchKey(credential, settings.keys);
  if (name === undefined) throw unauthorized(INCORRECT_KEY, "refused");
  return { id: `key:${name}`, kind: "key", name };
}

/**
 * The caller's IP address, as Cloudflare gives it in `CF-Connecting-IP`; null when there is none
 * that looks like an address (a local test, a forgery).
 */
export function clientIp(request: Request): string | null {
  const header = request.headers.get("cf-connecting-ip")?.trim() ?? "";
  return IP.test(header) ? header : null;
}

/**
 * The name of the key equal to `credential`, if any. Compares SHA-256 digests, so every
 * comparison has the same length whatever was sent, and compares against every key without
 * stopping at a match, so the time taken says nothing about which key (or how much of one) matched.
 */
async function matchKey(credential: string, keys: ReadonlyMap<string, KeyDigest>): Promise<string | undefined> {
  const presented = await digest(credential);
  let found: string | undefined;
  for (const [name, keyDigest] of keys) {
    if (sameDigest(presented, await keyDigest())) found = name;
  }
  return found;
}
