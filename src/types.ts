import type { Config } from "./config";
import type { Env } from "./env";

/** What one request learns on its way through the pipeline, for the log line and later steps. */
export type RequestInfo = {
  requestId: string;
  startedAt: number;
  model?: string;
  stream?: boolean;
  upstreamStatus?: number;
  /** Milliseconds from the request's start to upstream's response headers. */
  ttfbMs?: number;
  /** The proxy's own error code, when it answered with one. */
  error?: string;
  /** Settles when the response body has been fully sent, cut or cancelled. */
  done?: Promise<unknown>;
};

/** Hono's environment for this app: bindings and per-request variables. */
export type AppEnv = {
  Bindings: Env;
  Variables: {
    info: RequestInfo;
    /** The parsed configuration, set once it is known to be complete. */
    config: ReadyConfig;
    /** The request body, read and size-checked by `bodyLimit()`; null for requests without one. */
    body: Uint8Array | null;
  };
};

/** A `Config` without errors, so with a key. */
export type ReadyConfig = Config & { apiKey: string };
