import type { Context, MiddlewareHandler } from "hono";
import { concatBytes } from "../../bytes";
import { ProxyError } from "../../errors";
import type { AppEnv, RequestBody } from "../../types";
import { isRecord } from "../../usage/usage";

/**
 * Refuses request bodies over `MAX_BODY_BYTES` with 413 and puts the body in `c.var.body`.
 * JSON bodies are read into memory, because later steps look inside them. Other bodies with a
 * declared `Content-Length` within the cap (audio and file uploads) stream straight through, held
 * to that length. A chunked body is read only up to the cap, then cancelled.
 *
 * @example
 * app.post("/", configured(), bodyLimit(), handler);
 */
export function bodyLimit(): MiddlewareHandler<AppEnv> {
  return async function bodyLimitMiddleware(c, next) {
    c.set("body", await readBody(c.req.raw, c.get("config").maxBodyBytes));
    await next();
  };
}

/** `request`'s body within `maxBytes`: bytes for JSON and chunked bodies, a length-checked stream otherwise. */
export async function readBody(request: Request, maxBytes: number): Promise<RequestBody> {
  if (request.body === null || request.method === "GET" || request.method === "HEAD") return null;
  const tooLarge = () =>
    new ProxyError(413, `request body is larger than the proxy's limit of ${maxBytes} bytes`, {
      code: "request_too_large",
    });

  const declared = request.headers.get("content-length");
  if (declared !== null) {
    const length = Number(declared);
    if (length > maxBytes) {
      await request.body.cancel().catch(() => {});
      throw tooLarge();
    }
    const json = (request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/json");
    if (!json && Number.isSafeInteger(length)) {
      return request.body.pipeThrough(new FixedLengthStream(length));
    }
    return new Uint8Array(await request.arrayBuffer());
  }

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}

const decoder = new TextDecoder();

/**
 * The request body as a JSON object, parsed at most once per request; undefined when the body
 * is not a JSON object (upstream, or the route, will say so).
 *
 * @example
 * const stream = requestJson(c)?.stream === true;
 */
export function requestJson(c: Context<AppEnv>): Record<string, unknown> | undefined {
  const cached = c.get("json");
  if (cached !== undefined) return cached ?? undefined;
  const body = c.get("body");
  let json: Record<string, unknown> | null = null;
  if (body instanceof Uint8Array && body.byteLength > 0) {
    try {
      const value: unknown = JSON.parse(decoder.decode(body));
      if (isRecord(value)) json = value;
    } catch {
      // not JSON: leave it to upstream
    }
  }
  c.set("json", json);
  return json ?? undefined;
}
