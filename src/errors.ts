/** OpenAI's error `type` values that the proxy uses. */
export type ErrorType =
  | "invalid_request_error"
  | "permission_error"
  | "rate_limit_error"
  | "insufficient_quota"
  | "server_error";

/** Every `code` the proxy itself answers with (upstream's own codes pass through untouched). */
export type ErrorCode =
  // The route and the method
  | "unknown_url"
  | "method_not_allowed"
  | "invalid_path"
  // Configuration and the proxy itself
  | "proxy_not_configured"
  | "internal_error"
  // Who may call
  | "origin_not_allowed"
  | "invalid_api_key"
  | "turnstile_failed"
  | "turnstile_unavailable"
  // The request
  | "request_too_large"
  | "invalid_json"
  | "unsupported_media_type"
  | "invalid_messages"
  | "invalid_parameter"
  // Policy
  | "path_not_allowed"
  | "model_not_allowed"
  | "tool_not_allowed"
  | "model_not_found"
  | "max_tokens_over_cap"
  // Limits and budgets
  | "rate_limit_exceeded"
  | "insufficient_quota"
  // Upstream
  | "upstream_timeout"
  | "upstream_unreachable"
  | "upstream_auth_failed"
  | "upstream_redirect"
  | "upstream_bad_response"
  | "upstream_interrupted"
  | "upstream_stalled"
  | "client_closed";

/** The route family an error is rendered for: OpenAI's shape on `/v1/*`, the seed's shape on `/`. */
export type ErrorShape = "openai" | "seed";

export type ProxyErrorOptions = {
  type?: ErrorType;
  code?: ErrorCode | null;
  param?: string | null;
  headers?: Record<string, string>;
  /** False for errors that a retry cannot mend: tells SDKs not to retry (`x-should-retry: false`). */
  retryable?: boolean;
  /** What went wrong underneath (a fetch error, a D1 error), for logs; never rendered. */
  cause?: unknown;
};

/**
 * The one error the proxy throws. Handlers throw it; the app's `onError` renders it with
 * `renderError`. Its message names the request where that helps
 * (`POST /v1/chat/completions: upstream sent no response within 600000 ms`) and never holds a key.
 *
 * @example
 * throw new ProxyError(413, "request body is larger than 104857600 bytes", { code: "request_too_large" });
 */
export class ProxyError extends Error {
  override readonly name = "ProxyError";
  readonly status: number;
  readonly type: ErrorType;
  readonly code: ErrorCode | null;
  readonly param: string | null;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message: string, options: ProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.type = options.type ?? (status >= 500 ? "server_error" : "invalid_request_error");
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.headers =
      options.retryable === false ? { ...options.headers, "x-should-retry": "false" } : (options.headers ?? {});
  }
}

/**
 * The 404 for a path that is not a route of the proxy.
 *
 * @example
 * throw notFound("GET", "/nope");
 */
export function notFound(method: string, path: string): ProxyError {
  return new ProxyError(404, `${method} ${path} is not a route of this proxy`, { code: "unknown_url" });
}

/**
 * A 401 in OpenAI's shape (`invalid_api_key`), so SDKs raise their usual authentication error. The
 * message must never contain the credential. Per RFC 6750, a request that sent no credential gets
 * the bare `Bearer` challenge and a refused one `invalid_token`.
 *
 * @example
 * throw unauthorized("Incorrect API key provided.", "refused");
 */
export function unauthorized(message: string, credential: "missing" | "refused"): ProxyError {
  return new ProxyError(401, message, {
    type: "invalid_request_error",
    code: "invalid_api_key",
    headers: { "www-authenticate": credential === "missing" ? "Bearer" : 'Bearer error="invalid_token"' },
  });
}

const TITLES: Partial<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** The JSON body of an error in the given shape. */
export function errorBody(error: ProxyError, shape: ErrorShape): string {
  if (shape === "seed") {
    // The original shape, plus OpenAI's machine-readable code when there is one (a page tells a spent
    // budget from a rate limit by it).
    const code = error.code ?? undefined;
    return JSON.stringify({
      error: TITLES[error.status] ?? "Error",
      message: error.message,
      ...(code ? { code } : {}),
    });
  }
  const { message, type, param, code } = error;
  return JSON.stringify({ error: { message, type, param, code } });
}

/** Which shape errors take on a path: OpenAI's under `/v1` and the JSON APIs beside it (`/admin/`, `/session`, `/me`), the seed's elsewhere. */
export function shapeFor(path: string): ErrorShape {
  const json =
    path === "/v1" || path.startsWith("/v1/") || path.startsWith("/admin/") || path === "/session" || path === "/me";
  return json ? "openai" : "seed";
}

/**
 * Renders any error as a JSON response in the shape its route expects: a `ProxyError` as it is,
 * anything else as a generic 500 `internal_error` (the original is for the log only).
 *
 * @example
 * app.onError((error, c) => renderError(error, c.req.path));
 */
export function renderError(error: unknown, path: string): Response {
  const proxyError = asProxyError(error);
  const headers = new Headers(proxyError.headers);
  headers.set("content-type", "application/json");
  return new Response(errorBody(proxyError, shapeFor(path)), { status: proxyError.status, headers });
}

/** `error` itself when it is a `ProxyError`, else the generic 500 that stands for it. */
export function asProxyError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  return new ProxyError(500, "the proxy failed unexpectedly", { code: "internal_error", cause: error });
}
