import type { MiddlewareHandler } from "hono";
import { ProxyError } from "../../errors";
import type { AppEnv } from "../../types";

/**
 * Reads the request body once into `c.var.body`, refusing more than `MAX_BODY_BYTES` with 413.
 * A declared `Content-Length` over the cap is refused before reading; a chunked body is read
 * only up to the cap, then cancelled. Later steps (and the upstream request) use these bytes.
 *
 * @example
 * app.use("/v1/*", bodyLimit());
 */
export function bodyLimit(): MiddlewareHandler<AppEnv> {
  return async function bodyLimitMiddleware(c, next) {
    c.set("body", await readBody(c.req.raw, c.get("config").maxBodyBytes));
    await next();
  };
}

/** Reads `request`'s body, at most `maxBytes` of it; null when it has none. */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array | null> {
  if (request.body === null || request.method === "GET" || request.method === "HEAD") return null;
  const tooLarge = () =>
    new ProxyError(413, `request body is larger than the proxy's limit of ${maxBytes} bytes`, {
      code: "request_too_large",
    });

  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > maxBytes) {
      await request.body.cancel().catch(() => {});
      throw tooLarge();
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
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
