import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../types";
import { INCORRECT_KEY, MISSING_CREDENTIAL, originNotAllowed, unauthorized } from "./refuse";
import { type AuthSettings, JWT_SHAPE, type KeyDigest } from "./settings";
import { verifyToken } from "./token";

export { type AuthSettings, type KeyDigest, parseAuthSettings } from "./settings";

/** Who is calling, once authenticated. `id` keys the rate limiter and the usage ledger; `name` is what logs show (never the key or token). */
export type Client = {
  /** `key:web`, `sub:alice` or `ip:203.0.113.9`: the kind keeps a key name, a token subject and an IP apart. */
  id: string;
  kind: "key" | "token" | "ip";
  /** The key's name, the token's `sub`, or the IP. */
  name: string;
  /** Token claim `models`: allowed model patterns. */
  models?: string[];
  /** Token claim `origin`: the only origin the token may be used from (already checked). */
  origin?: string;
  /** Token claim `rpm`: requests per minute, replacing the default. */
  rpm?: number;
  /** Token claim `tpd`: tokens per day. */
  tpd?: number;
};

/** What `CF-Connecting-IP` can hold: an IPv4 or IPv6 address. Anything else (a local test, a forgery) is "unknown". */
const IP = /^[0-9A-Fa-f:.]{2,45}$/;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;
const encoder = new TextEncoder();

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
 * `Authorization: Bearer <credential>`: a JWT (three base64url parts) is verified as a token when
 * a JWT secret is set; anything else is compared, in constant time, against every client key.
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
    const header = request.headers.get("cf-connecting-ip")?.trim() ?? "";
    const ip = IP.test(header) ? header : "unknown";
    return { id: `ip:${ip}`, kind: "ip", name: ip };
  }

  const credential = bearerCredential(request.headers.get("authorization"));

  if (settings.jwtSecret !== null && JWT_SHAPE.test(credential)) {
    const { sub, ...claims } = await verifyToken(credential, settings.jwtSecret);
    if (claims.origin !== undefined) {
      const origin = request.headers.get("origin");
      if (origin !== claims.origin) throw originNotAllowed(claims.origin, origin);
    }
    return { id: `sub:${sub}`, kind: "token", name: sub, ...claims };
  }

  const name = await matchKey(credential, settings.keys);
  if (name === undefined) throw unauthorized(INCORRECT_KEY);
  return { id: `key:${name}`, kind: "key", name };
}

/** The credential of `Authorization: Bearer <credential>`; throws 401 for anything else. */
function bearerCredential(header: string | null): string {
  const match = header === null ? null : /^Bearer(?:[ \t]+(.*))?$/i.exec(header);
  const credential = match?.[1]?.trim() ?? "";
  if (credential === "") throw unauthorized(MISSING_CREDENTIAL);
  if (!VISIBLE_ASCII.test(credential)) throw unauthorized(INCORRECT_KEY);
  return credential;
}

/**
 * The name of the key equal to `credential`, if any. Compares SHA-256 digests, so every
 * comparison has the same length whatever was sent, and compares against every key without
 * stopping at a match, so the time taken says nothing about which key (or how much of one) matched.
 */
async function matchKey(credential: string, keys: ReadonlyMap<string, KeyDigest>): Promise<string | undefined> {
  const presented = await crypto.subtle.digest("SHA-256", encoder.encode(credential));
  let found: string | undefined;
  for (const [name, digest] of keys) {
    const equal = crypto.subtle.timingSafeEqual(presented, await digest());
    if (equal) found = name;
  }
  return found;
}
