import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../env";

declare module "hono" {
  interface ContextVariableMap {
    /** The proxy's id for this request, `req_proxy_…`; the response carries upstream's own when it has one. */
    requestId: string;
  }
}

/** A request id of the same form as OpenAI's, for responses the upstream never saw. */
export function newRequestId(): string {
  return `req_proxy_${crypto.randomUUID().replaceAll("-", "")}`;
}

/**
 * First step of the pipeline: gives the request an id, and makes sure its response carries
 * `x-request-id`: upstream's own (OpenAI's `req_…`) when upstream answered, else the proxy's.
 *
 * @example
 * app.use(requestId());
 */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async function requestIdMiddleware(c, next) {
    const id = newRequestId();
    c.set("requestId", id);
    await next();
    if (!c.res.headers.has("x-request-id")) c.res.headers.set("x-request-id", id);
  };
}
