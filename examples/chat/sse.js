/**
 * A tiny, robust reader for OpenAI-style Server-Sent Events (chat completions with `stream: true`).
 *
 * - buffers partial lines across network reads, and decodes with a streaming `TextDecoder`, so an event
 *   or a multi-byte character split between two reads comes out whole;
 * - accepts `\n` and `\r\n` line ends, ignores comments (`: …`) and non-`data` fields (`event:`, `id:`);
 * - stops at `data: [DONE]`;
 * - throws a {@link StreamError} on an error event (`{"error":{"message"}}` on `/v1`, `{"error","message"}` on `/`,
 *   which the proxy sends when upstream breaks off mid-stream) and when the body ends without `[DONE]`.
 *
 * @example
 * for await (const event of readEvents(response.body)) append(event.choices[0]?.delta?.content ?? "");
 */

/** The stream ended badly: an error event, a malformed event, or no `[DONE]`. */
export class StreamError extends Error {
  name = "StreamError";
}

/**
 * Yields each event's parsed JSON `data`, in order.
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<any, void, void>}
 */
export async function* readEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  /** @type {string[]} data lines of the event being read */
  let data = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += decoder.decode(value, { stream: !done });
      const lines = buffer.split("\n");
      buffer = done ? "" : (lines.pop() ?? "");
      if (done) lines.push(""); // an event the body ended without a blank line after
      for (const raw of lines) {
        const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (line === "") {
          const payload = data.join("\n");
          data = [];
          if (payload === "") continue;
          if (payload === "[DONE]") return;
          yield parse(payload);
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
      }
      if (done) throw new StreamError("the stream ended before the reply was complete");
    }
  } finally {
    reader.cancel().catch(() => {}); // frees the connection when the caller stops early
  }
}

/** @param {string} payload */
function parse(payload) {
  let event;
  try {
    event = JSON.parse(payload);
  } catch {
    throw new StreamError(`the stream sent an event that is not JSON: ${payload.slice(0, 80)}`);
  }
  if (event?.error) throw new StreamError(errorMessage(event) ?? "the stream reported an error");
  return event;
}

/**
 * The readable message of an error body in either of the proxy's shapes, or undefined.
 * @param {any} body `{"error":{"message"}}` (OpenAI) or `{"error":"Bad Gateway","message":"…"}` (the original)
 * @returns {string | undefined}
 */
export function errorMessage(body) {
  const error = body?.error;
  if (typeof error?.message === "string") return error.message;
  if (typeof body?.message === "string") return body.message;
  return typeof error === "string" ? error : undefined;
}
