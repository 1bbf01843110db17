import { ProxyError } from "../errors";

const decoder = new TextDecoder();

/**
 * Parses a request body that must be a JSON object, with a 400 that names the problem otherwise.
 *
 * @example
 * const request = parseJsonObject(c.get("body"));
 */
export function parseJsonObject(bytes: Uint8Array | null): Record<string, unknown> {
  if (bytes === null || bytes.byteLength === 0) {
    throw new ProxyError(400, "request body is empty; send a JSON object", { code: "invalid_json" });
  }
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ProxyError(400, `request body is not valid JSON: ${reason}`, { code: "invalid_json" });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProxyError(400, "request body must be a JSON object", { code: "invalid_json" });
  }
  return value as Record<string, unknown>;
}
