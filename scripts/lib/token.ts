import { SignJWT } from "jose";
import { MIN_JWT_SECRET_LENGTH } from "../../src/config/auth";
import { isSerializedOrigin } from "../../src/config/origins";

/** What a client token carries; the same claims the proxy checks. */
export type TokenOptions = {
  /** `PROXY_JWT_SECRET`; surrounding whitespace is ignored, as the proxy ignores it. */
  secret: string;
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
  /** Seconds since the epoch; defaults to now. */
  issuedAt?: number;
};

/**
 * Mints an HS256 client token the proxy accepts. Refuses options the proxy would refuse.
 *
 * @example
 * const token = await mintToken({ secret: env.PROXY_JWT_SECRET, sub: "alice", ttlSeconds: 3600 });
 */
export async function mintToken(options: TokenOptions): Promise<string> {
  const secret = options.secret.trim();
  if (secret.length < MIN_JWT_SECRET_LENGTH) {
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
  const issuedAt = options.issuedAt ?? Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(options.sub)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + options.ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

const UNITS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/**
 * Parses a lifetime such as `30s`, `15m`, `1h` or `7d` into seconds.
 *
 * @example
 * parseTtl("15m") // 900
 */
export function parseTtl(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  const amount = Number(match?.[1]);
  const unit = match?.[2] as keyof typeof UNITS | undefined;
  if (unit === undefined || !Number.isSafeInteger(amount) || amount <= 0) {
    throw new Error(`--ttl must be a positive number with a unit: 30s, 15m, 1h or 7d (got "${text}")`);
  }
  return amount * UNITS[unit];
}
