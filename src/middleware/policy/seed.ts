import type { SeedDefaults } from "../../config";
import { ProxyError } from "../../errors";
import { type JsonObject, memberValue } from "../../lib/json-object";
import { REASONING_MODEL } from "../../usage/reservation";

const decoder = new TextDecoder();

/**
 * Checks a `POST /` request the way the original proxy did: a JSON content type (415 otherwise),
 * a JSON object body with a non-empty `messages` array (400 otherwise, saying what is wrong).
 *
 * @throws ProxyError 415 `unsupported_media_type`, 400 `invalid_json` or `invalid_messages`.
 */
export function checkSeedRequest(contentType: string, body: Uint8Array | null, json: JsonObject | null): JsonObject {
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    const got = contentType ? `"${contentType}"` : "none";
    throw new ProxyError(415, `content type must be application/json (got ${got})`, { code: "unsupported_media_type" });
  }
  if (json === null) throw invalidJson(body);
  const messages = json.members.get("messages");
  const first = messages === undefined ? undefined : firstNonSpace(json.bytes, messages[0] + 1);
  if (messages === undefined || json.bytes[messages[0]] !== 0x5b || first === 0x5d) {
    throw new ProxyError(400, "messages must be a non-empty array of chat messages", {
      code: "invalid_messages",
      param: "messages",
    });
  }
  return json;
}

/**
 * The seed's defaults for a chat request, only where the client left a field out: `model`, then
 * `temperature` and `max_tokens` unless the model is a reasoning model (or the client set
 * `max_completion_tokens`, which `max_tokens` would conflict with). `max_tokens` is held to
 * `maxOutputTokens` when the operator set a cap.
 *
 * @example
 * seedDefaults(json, config.seed, null) // { model: "gpt-3.5-turbo", temperature: 0.7, max_tokens: 1000 } for {"messages":[…]}
 */
export function seedDefaults(
  json: JsonObject,
  defaults: SeedDefaults,
  maxOutputTokens: number | null,
): Record<string, unknown> {
  const added: Record<string, unknown> = {};
  const has = (key: string) => json.members.has(key);
  if (!has("model")) added.model = defaults.model;
  const model = has("model") ? memberValue(json, "model") : defaults.model;
  if (typeof model === "string" && REASONING_MODEL.test(model)) return added;
  if (!has("temperature")) added.temperature = defaults.temperature;
  if (!has("max_tokens") && !has("max_completion_tokens")) {
    added.max_tokens = Math.min(defaults.maxTokens, maxOutputTokens ?? Number.POSITIVE_INFINITY);
  }
  return added;
}

/** A 400 that says what is wrong with a body that is not a JSON object. Parses only to word the error. */
export function invalidJson(body: Uint8Array | null): ProxyError {
  if (body === null || body.byteLength === 0) {
    return new ProxyError(400, "request body is empty; send a JSON object", { code: "invalid_json" });
  }
  try {
    JSON.parse(decoder.decode(body));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return new ProxyError(400, `request body is not valid JSON: ${reason}`, { code: "invalid_json" });
  }
  return new ProxyError(400, "request body must be a JSON object", { code: "invalid_json" });
}

function firstNonSpace(bytes: Uint8Array, from: number): number | undefined {
  let at = from;
  while (bytes[at] === 0x20 || bytes[at] === 0x0a || bytes[at] === 0x0d || bytes[at] === 0x09) at++;
  return bytes[at];
}
