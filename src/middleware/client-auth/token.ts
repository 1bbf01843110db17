import { errors, jwtVerify } from "jose";
import type { TokenClaims } from "../../client";
import { isSerializedOrigin } from "../../config";
import { type ProxyError, unauthorized } from "../../errors";
import { INCORRECT_KEY } from "./refuse";

/** Clock skew allowed on `exp` and `nbf`, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 5;

const hmacKeys = new WeakMap<Uint8Array, CryptoKey>();

/** The secret imported as an HS256 verification key, once per isolate. */
async function hmacKey(secret: Uint8Array): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (key === undefined) {
    key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    hmacKeys.set(secret, key);
  }
  return key;
}

/**
 * Verifies an HS256 token signed with `secret` and checks its claims: `sub` and `exp` required,
 * `models`, `origin`, `rpm`, `tpd`, `usd` optional but well-typed. Any other algorithm (`none`, `RS256`…),
 * a wrong signature or a malformed token gets the generic 401; a properly signed token that has
 * expired or carries a bad claim gets a 401 that says so (its holder could decode it anyway).
 *
 * @example
 * const claims = await verifyToken(credential, settings.jwtSecret);
 */
export async function verifyToken(token: string, secret: Uint8Array): Promise<TokenClaims> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, await hmacKey(secret), {
      algorithms: ["HS256"],
      requiredClaims: ["sub", "exp"],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
    }));
  } catch (error) {
    throw refusal(error);
  }
  return claimsOf(payload);
}

function refusal(error: unknown): ProxyError {
  // jose checks the signature before any claim, so these two only ever describe a token we signed.
  if (error instanceof errors.JWTExpired) return unauthorized("Token has expired", "refused");
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") return invalidClaim(error.claim, "is missing");
    if (error.claim === "nbf") return unauthorized("Token is not valid yet", "refused");
    return invalidClaim(error.claim, "is invalid");
  }
  return unauthorized(INCORRECT_KEY, "refused");
}

function invalidClaim(claim: string, problem: string): ProxyError {
  return unauthorized(`Invalid token: the "${claim}" claim ${problem}`, "refused");
}

function claimsOf(payload: Record<string, unknown>): TokenClaims {
  const { sub, models, origin, rpm, tpd, usd, exp } = payload;
  if (typeof sub !== "string" || sub.trim() === "") throw invalidClaim("sub", "must be a non-empty string");
  const claims: TokenClaims = { sub, ...(typeof exp === "number" ? { exp } : {}) };
  if (models !== undefined) {
    if (!Array.isArray(models) || !models.every((m) => typeof m === "string" && m !== "")) {
      throw invalidClaim("models", "must be an array of model names or patterns");
    }
    claims.models = models;
  }
  if (origin !== undefined) {
    if (typeof origin !== "string" || !isSerializedOrigin(origin)) {
      throw invalidClaim("origin", "must be an origin such as https://app.example.com");
    }
    claims.origin = origin;
  }
  if (rpm !== undefined) {
    if (!isPositiveInteger(rpm)) throw invalidClaim("rpm", "must be a positive integer");
    claims.rpm = rpm;
  }
  if (tpd !== undefined) {
    if (!isPositiveInteger(tpd)) throw invalidClaim("tpd", "must be a positive integer");
    claims.tpd = tpd;
  }
  if (usd !== undefined) {
    if (typeof usd !== "number" || !Number.isFinite(usd) || usd <= 0) {
      throw invalidClaim("usd", "must be a positive number of US dollars");
    }
    claims.usd = usd;
  }
  return claims;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}
