import type { ReadyConfig } from "./config";
import type { Env } from "./env";
import type { Client } from "./middleware/client-auth";
import type { StreamOutcome } from "./proxy/sse";
import type { Usage } from "./usage/usage";

/** What one request learns on its way through the pipeline, for the log line and later steps. */
export type RequestInfo = {
  startedAt: number;
  model?: string;
  stream?: boolean;
  upstreamStatus?: number;
  /** Milliseconds from the request's start to upstream's response headers. */
  ttfbMs?: number;
  /** The proxy's own error code, when it answered with one. */
  error?: string;
  /** For streams: settles with how the stream ended, once it has been fully sent, cut or cancelled. */
  done?: Promise<StreamOutcome>;
  /** Settles, after the response, with what the request used (null when it used nothing countable). */
  accounting?: Promise<Accounting | null>;
};

/** Hono's environment for this app: bindings and per-request variables. */
export type AppEnv = {
  Bindings: Env;
  Variables: {
    info: RequestInfo;
    /** The parsed configuration, set once it is known to be complete. */
    config: ReadyConfig;
    /** The request body, size-checked by `bodyLimit()`. */
    body: RequestBody;
    /** The body parsed as a JSON object by `requestJson()`, once; null when it is not one. */
    json: Record<string, unknown> | null;
    /** Who is calling, set by `clientAuth()`. */
    client: Client;
  };
};

/** A request body within the size limit: bytes when read into memory, a stream when passed through, null when absent. */
export type RequestBody = Uint8Array | ReadableStream<Uint8Array> | null;

/** What one request used, known once its response is over. */
export type Accounting = {
  usage: Usage | null;
  /** Prompt plus completion tokens: exact when `usage` is known, else an estimate from what was seen. */
  tokens: number | null;
  /** The stream broke off or the client left before upstream's usage arrived. */
  incomplete: boolean;
  /** Milliseconds from the request's start to the first content upstream sent. */
  ttftMs: number | null;
};
