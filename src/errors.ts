/** OpenAI's error `type` values that the proxy uses. */
export type ErrorType =
  | "invalid_request_error"
  | "permission_error"
  | "rate_limit_error"
  | "insufficient_quota"
  | "server_error";

/** The route family an error is rendered for: OpenAI's shape on `/v1/*`, the seed's shape on `/`. */
export type ErrorShape = "openai" | "seed";

/**
 * The one error the proxy throws. Handlers throw it; `renderError` turns it into a response.
 *
 * @example
 * throw new ProxyError(413, "request body is larger than 10485760 bytes", { code: "request_too_large" });
 */
export class ProxyError extends Error {
  override readonly name = "ProxyError";
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options: {
      type?: ErrorType;
      code?: string | null;
      param?: string | null;
      headers?: Record<string, string>;
      /** False for errors that a retry cannot mend: tells SDKs not to retry (`x-should-retry: false`). */
      retryable?: boolean;
    } = {},
  ) {
    super(message);
    this.status = status;
    this.type = options.type ?? (status >= 500 ? "server_error" : "invalid_request_error");
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.headers =
      options.retryable === false ? { ...options.headers, "x-should-retry": "false" } : (options.headers ?? {});
  }
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
  504: "Gateway Timeout",
};

/** The JSON body of an error in the given shape. */
export function errorBody(error: ProxyError, shape: ErrorShape): string {
  if (shape === "seed") {
    return JSON.stringify({ error: TITLES[error.status] ?? "Error", message: error.message });
  }
  const { message, type, param, code } = error;
  return JSON.stringify({ error: { message, type, param, code } });
}

/** Which shape errors take on a path: OpenAI's under `/v1` (and the admin API), the seed's elsewhere. */
export function shapeFor(path: string): ErrorShape {
  return path === "/v1" || path.startsWith("/v1/") || path.startsWith("/admin/") ? "openai" : "seed";
}

/** Renders a `ProxyError` as a JSON response in the shape its route expects. */
export function renderError(error: ProxyError, path: string): Response {
  const headers = new Headers(error.headers);
  headers.set("content-type", "application/json");
  return new Response(errorBody(error, shapeFor(path)), { status: error.status, headers });
}
