import { Hono } from "hono";
import { getConfig, isOriginAllowed, isSerializedOrigin } from "../../config";
import type { AppEnv } from "../../env";
import { notFound, ProxyError } from "../../errors";
import { isRecord } from "../../lib/json";
import { limiterFor } from "../../limits/client";
import { readBody } from "../../middleware/body";
import { clientIp } from "../../middleware/client-auth";
import { mintToken } from "../../middleware/client-auth/mint";
import { configured } from "../../middleware/configured";
import { MAX_TOKEN_LENGTH, verifyTurnstile } from "./turnstile";

/** A session request is a token of at most 2 KB in a small JSON object. */
const MAX_BODY_BYTES = 16 * 1024;

/** What `POST /session` answers. */
export type SessionMinted = {
  /** A client token (HS256) for `Authorization: Bearer …` from the page's origin only. */
  token: string;
  /** When the token expires, in seconds since the epoch. */
  expires_at: number;
  limits: { rpm: number; usd_per_day: number };
};

/**
 * `POST /session`: a short-lived token for an anonymous visitor of a page with no backend, once
 * Cloudflare Turnstile says the visitor is a person. The page sends `{"turnstile": "<token from
 * the widget>"}` from an origin on `ALLOWED_ORIGINS`; the proxy verifies it (see
 * `verifyTurnstile`), counts the mint against `SESSION_MINTS_PER_HOUR` for the visitor's IP (an
 * IPv6 address's /64; exactly, in a Durable Object), and answers with a token of the kind it already verifies: `sub`
 * `session:<random>`, `exp` after `SESSION_TTL_SECONDS`, the page's `origin` (no other origin may
 * use it), `rpm` and a daily budget `usd` from `SESSION_RPM` and `SESSION_DAILY_USD`. Without
 * `TURNSTILE_SECRET_KEY` the route does not exist (404).
 *
 * @example
 * app.route("/", sessionRoutes());
 */
export function sessionRoutes(): Hono<AppEnv> {
  const sessions = new Hono<AppEnv>();
  sessions.post(
    "/session",
    async function sessionsOn(c, next) {
      if (!getConfig(c.env).sessions.enabled) throw notFound(c.req.method, c.req.path);
      await next();
    },
    configured(),
    async function mintSession(c) {
      const config = c.get("config");
      const settings = config.sessions;
      const origin = c.req.header("origin");
      // A session is bound to a page's origin, as a browser sends it (`ALLOWED_ORIGINS=*` lets any through).
      if (origin === undefined || !isSerializedOrigin(origin) || !isOriginAllowed(config.cors.origins, origin)) {
        throw new ProxyError(403, "sessions are minted only for pages on this proxy's ALLOWED_ORIGINS", {
          type: "permission_error",
          code: "origin_not_allowed",
        });
      }
      const token = await turnstileToken(c.req.raw);
      const ip = clientIp(c.req.raw);
      await verifyTurnstile(settings, token, { ip, hostname: new URL(origin).hostname });
      // Counted once verified, so that failed attempts (anyone's) never lock out the people behind an address.
      const admitted = await limiterFor(c.env.RATE_LIMITER, `mint:${networkOf(ip)}`).admitHourly(settings.mintsPerHour);
      if (!admitted.ok) {
        throw new ProxyError(
          429,
          `Too many sessions from this address: at most ${settings.mintsPerHour} an hour. Try again in ${admitted.retryAfterSeconds} s.`,
          {
            type: "rate_limit_error",
            code: "rate_limit_exceeded",
            headers: { "retry-after": String(admitted.retryAfterSeconds) },
          },
        );
      }

      const secret = config.auth.jwtSecret;
      if (secret === null)
        throw new ProxyError(500, "sessions need PROXY_JWT_SECRET", { code: "proxy_not_configured" });
      const now = Math.floor(Date.now() / 1000);
      const expiresAt = now + settings.ttlSeconds;
      const minted = await mintToken({
        secret,
        sub: `session:${crypto.randomUUID().replaceAll("-", "")}`,
        ttlSeconds: settings.ttlSeconds,
        issuedAt: now,
        origin,
        rpm: settings.rpm,
        usd: settings.dailyUsd,
      });
      const body: SessionMinted = {
        token: minted,
        expires_at: expiresAt,
        limits: { rpm: settings.rpm, usd_per_day: settings.dailyUsd },
      };
      return c.json(body, 200, { "cache-control": "no-store" });
    },
  );
  return sessions;
}

/** The Turnstile token of a `POST /session` body. @throws ProxyError 400 naming what is wrong. */
async function turnstileToken(request: Request): Promise<string> {
  const invalid = (message: string) => new ProxyError(400, message, { code: "invalid_json", param: "turnstile" });
  const bytes = await readBody(request, MAX_BODY_BYTES);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes instanceof Uint8Array ? bytes : new Uint8Array()));
  } catch {
    throw invalid('send a JSON object: {"turnstile": "<token from the Turnstile widget>"}');
  }
  const token = isRecord(body) ? body.turnstile : undefined;
  if (typeof token !== "string" || token === "" || token.length > MAX_TOKEN_LENGTH) {
    throw invalid(`turnstile must be the Turnstile widget's token, a string of at most ${MAX_TOKEN_LENGTH} characters`);
  }
  return token;
}

/**
 * What mints are counted by: an IPv4 address, or an IPv6 address's /64 network (one subscriber's
 * usual allocation, which a single visitor can rotate addresses within).
 *
 * @example
 * networkOf("2001:db8:1:2:aaaa::1"); // "2001:db8:1:2::/64"
 * networkOf("203.0.113.9"); // "203.0.113.9"
 */
export function networkOf(ip: string | null): string {
  if (ip === null) return "unknown";
  if (!ip.includes(":")) return ip;
  const [head = "", tail] = ip.toLowerCase().split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}
