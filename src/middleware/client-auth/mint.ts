import { SignJWT } from "jose";
import { MIN_JWT_SECRET_LENGTH } from "../../config/auth";
import { isSerializedOrigin } from "../../config/origins";

/** What a client token carries; the same claims the proxy checks. */
export type TokenOptions = {
  /** `PROXY_JWT_SECRET` (surrounding whitespace is ignored, as the proxy ignores it), or its bytes as the proxy's config holds them. */
  secret: string | Uint8Array;
  /** The client's identity: its rate limit and logs go by this. */
  sub: string;
  /** Lifetime in seconds from `issuedAt`. Negative mints an already expired token (for tests). */
  ttlSeconds: number;
  /** Allowed model patterns, e.g. `["gpt-4o-mini", "gpt-4.1*"]`. */
  models?: string[];
  /** The only origin the token may be used from, e.g. `https://app.example.com`. */
  origin?: string;
  /** Requests per minute, replacing the proxy's default for this subject. */
  rpm?: number;
  /** Tokens per day. */
  tpd?: number;
  /** US dollars per day. */
  usd?: number;
  /** Seconds since the epoch; defaults to now. */
  issuedAt?: number;
};

/**
 * Mints an HS256 client token the proxy accepts: what `npm run token` prints, and what
 * `POST /session` answers. Refuses options the proxy would refuse.
 *
 * @throws Error naming the option the proxy would refuse.
 * @example
 * const token = await mintToken({ secret: env.PROXY_JWT_SECRET, sub: "alice", ttlSeconds: 3600 });
 */
export async function mintToken(options: TokenOptions): Promise<string> {
  const secret = typeof options.secret === "string" ? new TextEncoder().encode(options.secret.trim()) : options.secret;
  if (secret.byteLength < MIN_JWT_SECRET_LENGTH) {
    throw new Error(`the JWT secret must be at least ${MIN_JWT_SECRET_LENGTH} characters long`);
  }
  if (options.sub.trim() === "") throw new Error("sub must not be empty");
  if (!Number.isSafeInteger(options.ttlSeconds) || options.ttlSeconds === 0) {
    throw new Error("ttlSeconds must be a non-zero whole number of seconds");
  }
  const claims: Record<string, unknown> = {};
  if (options.models !== undefined) {
    if (options.models.some((m) => m.trim() === "")) throw new Error("models must not contain an empty pattern");
    claims.models = options.models;
  }
  if (options.origin !== undefined) {
    if (!isSerializedOrigin(options.origin)) {
      throw new Error(`origin must be an origin such as https://app.example.com (got "${options.origin}")`);
    }
    claims.origin = options.origin;
  }
  for (const name of ["rpm", "tpd"] as const) {
    const value = options[name];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
    claims[name] = value;
  }
  if (options.usd !== undefined) {
    if (!Number.isFinite(options.usd) || options.usd <= 0) throw new Error("usd must be a positive number of dollars");
    claims.usd = options.usd;
  }
  const issuedAt = options.issuedAt ?? Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(options.sub)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + options.ttlSeconds)
    .sign(secret);
}
