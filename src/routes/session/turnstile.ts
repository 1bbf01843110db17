import type { SessionSettings } from "../../config";
import { ProxyError } from "../../errors";
import { isRecord } from "../../lib/json";

/** Siteverify answers within this long, or the visitor is asked to try again: 503, never a session. */
export const SITEVERIFY_TIMEOUT_MS = 5_000;
/** `Retry-After` of that 503, in seconds. */
const RETRY_AFTER_SECONDS = "5";
/** The longest token the Turnstile widget issues (Cloudflare's documentation, checked 2026-11-30). */
export const MAX_TOKEN_LENGTH = 2048;

/**
 * Verifies a Turnstile token with siteverify (`TURNSTILE_SITEVERIFY_URL`), passing the visitor's IP
 * and an idempotency key, and checks what it says: `success`, a `hostname` equal to the page's
 * origin's host, and the `action` `TURNSTILE_ACTION` names, when it does.
 *
 * @throws ProxyError 503 `turnstile_unavailable` with `Retry-After` when siteverify cannot be
 * reached, fails or is slow; 403 `turnstile_failed` naming the reason when it does not verify.
 *
 * @example
 * await verifyTurnstile(config.sessions, token, { ip: "203.0.113.9", hostname: "app.example.com" });
 */
export async function verifyTurnstile(
  settings: SessionSettings,
  token: string,
  visitor: { ip: string | null; hostname: string },
): Promise<void> {
  const form = new URLSearchParams({
    secret: settings.secret ?? "",
    response: token,
    idempotency_key: crypto.randomUUID(),
  });
  if (visitor.ip !== null) form.set("remoteip", visitor.ip);
  let outcome: unknown;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error("siteverify timed out")), SITEVERIFY_TIMEOUT_MS);
  try {
    const response = await fetch(settings.siteverifyUrl, {
      method: "POST",
      body: form,
      signal: abort.signal,
      redirect: "manual",
    });
    if (!response.ok) throw new Error(`siteverify answered ${response.status}`);
    outcome = await response.json();
  } catch (cause) {
    throw new ProxyError(503, "Turnstile could not be reached to verify this visitor; try again shortly", {
      code: "turnstile_unavailable",
      headers: { "retry-after": RETRY_AFTER_SECONDS },
      cause,
    });
  } finally {
    clearTimeout(timer);
  }
  if (!isRecord(outcome) || outcome.success !== true) {
    const codes = isRecord(outcome) && Array.isArray(outcome["error-codes"]) ? outcome["error-codes"].map(String) : [];
    const reason = codes.includes("timeout-or-duplicate")
      ? "the Turnstile token has expired or was already used; get a new one"
      : `Turnstile did not verify this visitor${codes.length > 0 ? ` (${codes.join(", ")})` : ""}`;
    throw failed(reason);
  }
  if (outcome.hostname !== visitor.hostname) {
    throw failed(
      `the Turnstile token was issued for another site (${String(outcome.hostname)}), not ${visitor.hostname}`,
    );
  }
  if (settings.action !== null && outcome.action !== settings.action) {
    throw failed(`the Turnstile token was issued for another action than ${settings.action}`);
  }
}

function failed(message: string): ProxyError {
  return new ProxyError(403, message, { type: "permission_error", code: "turnstile_failed", retryable: false });
}
