import { ProxyError } from "../../errors";

/** The message for a credential that is not accepted, whatever the reason: it tells an attacker nothing. */
export const INCORRECT_KEY = "Incorrect API key provided.";
/** The message for a request without a bearer credential. */
export const MISSING_CREDENTIAL = "Missing bearer credential: send Authorization: Bearer <key>";

/**
 * A 401 in OpenAI's shape (`invalid_api_key`), so SDKs raise their usual authentication error.
 * The message must never contain the credential.
 */
export function unauthorized(message: string): ProxyError {
  // RFC 6750: a request that sent no credential gets the bare challenge, a refused one gets `invalid_token`.
  const challenge = message === MISSING_CREDENTIAL ? "Bearer" : 'Bearer error="invalid_token"';
  return new ProxyError(401, message, {
    type: "invalid_request_error",
    code: "invalid_api_key",
    headers: { "www-authenticate": challenge },
  });
}

/** A 403 for a token used from another origin than its `origin` claim names. */
export function originNotAllowed(allowed: string, origin: string | null): ProxyError {
  const used = origin === null ? "a request without an Origin header" : `origin ${origin}`;
  return new ProxyError(403, `This token may only be used from origin ${allowed}, not from ${used}`, {
    type: "permission_error",
    code: "origin_not_allowed",
  });
}
