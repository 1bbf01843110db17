import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../env";
import { ProxyError } from "../../errors";
import { concatBytes } from "../../lib/bytes";
import { type JsonObject, readJsonObject } from "../../lib/json-object";
import type { RequestBody } from "../../proxy/forward";
import { billingOf } from "../../usage/reservation";

declare module "hono" {
  interface ContextVariableMap {
    /** The request body within `MAX_BODY_BYTES`, as the client sent it. */
    body: RequestBody;
    /** The body read as a JSON object, in place; null when it is not one (or was streamed through). */
    json: JsonObject | null;
  }
}

/** Media types of uploads: bodies that stream straight through, which nothing needs to look inside. */
const UPLOAD = /^(multipart\/|audio\/|video\/|image\/|application\/octet-stream)/i;

/**
 * Whether a body of this `Content-Type` is an upload (multipart, audio, video, images, octet
 * streams), which the proxy passes on without reading.
 *
 * @example
 * isUpload("multipart/form-data; boundary=x"); // true
 */
export function isUpload(contentType: string | undefined): boolean {
  return UPLOAD.test(contentType ?? "");
}

/**
 * Refuses request bodies over `MAX_BODY_BYTES` with 413 and puts the body in `body`. Uploads
 * (multipart, audio, images, octet streams) with a declared `Content-Length` within the cap stream
 * straight through, held to that length, unless they go to an endpoint that bills tokens
 * (transcriptions, image edits), whose form fields the rules read; every other body (JSON, whatever
 * its declared type) is read into memory, because the steps after this one decide on what it says,
 * and is read as a JSON object into `json` when it is one. A chunked body is read only up to the
 * cap, then cancelled.
 *
 * @example
 * app.post("/", configured(), bodyLimit(), handler);
 */
export function bodyLimit(): MiddlewareHandler<AppEnv> {
  return async function bodyLimitMiddleware(c, next) {
    const path = c.req.path;
    const read = path === "/" || billingOf(c.req.method, path.slice("/v1".length)) === "tokens";
    const body = await readBody(c.req.raw, c.get("config").body.maxBytes, read);
    c.set("body", body);
    const readable = body instanceof Uint8Array && body.byteLength > 0 && !isUpload(c.req.header("content-type"));
    c.set("json", readable ? readJsonObject(body) : null);
    await next();
  };
}

/**
 * The most the proxy reads into memory for one request (JSON bodies, forms to token-billed
 * endpoints), whatever `MAX_BODY_BYTES` allows: OpenAI's own limit on a request's payload (50 MB,
 * its vision guide, checked 2026-11-30), which keeps a read body and its one rewrite inside the
 * isolate's 128 MB (see bench/RESULTS.md). Uploads that stream through are held to `MAX_BODY_BYTES` only.
 */
export const MAX_READ_BYTES = 50 * 1024 * 1024;

/**
 * `request`'s body within `maxBytes`: a length-checked stream for uploads with a declared length
 * (unless `readUploads`), bytes otherwise (within `MAX_READ_BYTES` too), null when there is none.
 *
 * @throws ProxyError 413 `request_too_large` when it is larger than it may be, saying which limit.
 */
export async function readBody(request: Request, maxBytes: number, readUploads = false): Promise<RequestBody> {
  if (request.body === null || request.method === "GET" || request.method === "HEAD") return null;
  const declared = request.headers.get("content-length");
  const length = declared === null ? Number.NaN : Number(declared);
  const streams =
    !readUploads && isUpload(request.headers.get("content-type") ?? undefined) && Number.isSafeInteger(length);
  const limit = streams ? maxBytes : Math.min(maxBytes, MAX_READ_BYTES);
  const tooLarge = () => {
    const which =
      limit < maxBytes
        ? `the limit of ${limit} bytes on a body the proxy reads (JSON, or a form to an endpoint that bills tokens), OpenAI's own`
        : `the proxy's limit of ${limit} bytes`;
    return new ProxyError(413, `request body is larger than ${which}`, { code: "request_too_large" });
  };

  if (declared !== null) {
    if (length > limit) {
      await request.body.cancel().catch(() => {});
      throw tooLarge();
    }
    if (streams) return request.body.pipeThrough(new FixedLengthStream(length));
    return new Uint8Array(await request.arrayBuffer());
  }

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}
