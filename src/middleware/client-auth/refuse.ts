import { ProxyError } from "../../errors";

/** The message for a credential that is not accepted, whatever the reason: it tells an attacker nothing. */
export const INCORRECT_KEY = "Incorrect API key provided.";
/** The message for a request without a bearer credential. */
export const MISSING_CREDENTIAL = "Missing bearer credential: send Authorization: Bearer <key>";

/** A 403 for a token used from another origin than its `origin` claim names. */
export function originNotAllowed(allowed: string, origin: string | null): ProxyError {
  const used = origin === null ? "a request without an Origin header" : `origin ${origin}`;
  return new ProxyError(403, `This token may only be used from origin ${allowed}, not from ${used}`, {
    type: "permission_error",
    code: "origin_not_allowed",
  });
}
