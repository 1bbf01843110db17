import { isRecord } from "../lib/json";

/** An error body larger than this is not read: it is replaced by a generic one. */
const MAX_ERROR_BYTES = 64 * 1024;

/**
 * What a key, a session token or a bearer credential looks like in a message: OpenAI's own
 * (`sk-…`, `sk-proj-…`, `rk-…`, `sess-…`, ephemeral `ek_…`, masked or not), other providers'
 * (Groq's `gsk_…`, xAI's `xai-…`, Google's `AIza…`) and any `Bearer …`.
 */
const KEY_LIKE = [
  /\b(?:sk|rk|sess|ek|gsk|xai)[-_][A-Za-z0-9_*.-]{4,}/g,
  /\bAIza[A-Za-z0-9_*-]{8,}/g,
  /\bBearer\s+[^\s"',;]+/gi,
];

/** The code OpenAI answers with when a request comes from a country it does not serve. */
export const REGION_BLOCKED = "unsupported_country_region_territory";

/** What the client is told instead of OpenAI's region block message: the cause and the fix. */
export const REGION_BLOCKED_MESSAGE =
  "OpenAI refused this request because it reached OpenAI from a country or region OpenAI does not serve: " +
  "Cloudflare ran the proxy in a data center near the caller. The operator can fix this by keeping the " +
  'proxy in a region OpenAI serves with "placement" in wrangler.jsonc (see the README).';

/**
 * `text` with every key-like fragment replaced by `[redacted]`, and each of `secrets` (every
 * upstream's keys) wherever it appears.
 *
 * @example
 * redact("Incorrect API key provided: sk-proj-****abcd.", ["sk-…"]); // "Incorrect API key provided: [redacted]."
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 8) out = out.replaceAll(secret, "[redacted]");
  for (const pattern of KEY_LIKE)
    out = out.replace(pattern, (match) => (match.startsWith("Bearer") ? "Bearer [redacted]" : "[redacted]"));
  return out;
}

/**
 * Upstream's error answer as the client should see it: status, `type`, `code` and `param` as
 * upstream sent them, the message with anything key-like redacted; a region block gets a message
 * that names its cause and fix. A body that is not OpenAI's JSON error shape is passed on as
 * redacted text; one too large to read is replaced by a generic message.
 *
 * @example
 * const body = await upstreamErrorBody(upstream, config.upstream.secrets);
 */
export async function upstreamErrorBody(
  upstream: Response,
  secret: readonly string[],
): Promise<{ body: string; json: boolean; regionBlocked: boolean }> {
  const declared = Number(upstream.headers.get("content-length") ?? 0);
  if (declared > MAX_ERROR_BYTES) {
    await upstream.body?.cancel().catch(() => {});
    return {
      body: `upstream answered ${upstream.status} with a body too large to show`,
      json: false,
      regionBlocked: false,
    };
  }
  const text = await readLimited(upstream, MAX_ERROR_BYTES);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { body: redact(text, secret), json: false, regionBlocked: false };
  }
  if (!isRecord(parsed) || !isRecord(parsed.error))
    return { body: redact(text, secret), json: true, regionBlocked: false };
  const error = parsed.error;
  const regionBlocked = error.code === REGION_BLOCKED;
  const message = regionBlocked
    ? REGION_BLOCKED_MESSAGE
    : typeof error.message === "string"
      ? redact(error.message, secret)
      : error.message;
  const param = typeof error.param === "string" ? redact(error.param, secret) : error.param;
  return { body: JSON.stringify({ ...parsed, error: { ...error, message, param } }), json: true, regionBlocked };
}

/**
 * The body of an (error) answer as text, at most `limit` bytes of it; the rest is not read.
 *
 * @example
 * const text = await readLimited(upstream);
 */
export async function readLimited(response: Response, limit = MAX_ERROR_BYTES): Promise<string> {
  if (response.body === null) return "";
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    text += decoder.decode(chunk, { stream: true });
    if (size > limit) break;
  }
  return text + decoder.decode();
}
