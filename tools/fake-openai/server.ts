/**
 * A small, faithful fake of the OpenAI API (api.openai.com/v1) for end-to-end tests, the demo and the benchmark.
 * Listens on 127.0.0.1 only, uses node:http only and never touches the network. Replies are deterministic:
 * chat answers `Hello! You said: <last user message>`.
 *
 * Faults — named by the request's JSON `model` field or an `x-fake-fault` header, on any /v1 path, after auth:
 *   fault-429              429 rate_limit_exceeded (type `requests`), retry-after: 2, retry-after-ms: 2000
 *   fault-500              500 server_error "The server had an error while processing your request…"
 *   fault-503              503 server_error "The engine is currently overloaded…"
 *   fault-400              400 invalid_request_error (param `model`)
 *   fault-slow-first-byte  waits `x-fake-delay-ms` (default 5000) before the headers, then answers normally
 *   fault-stall            headers + the first two SSE events, then silence until the client hangs up
 *   fault-reset            headers + three SSE events, then a TCP reset (socket.resetAndDestroy)
 *   fault-redirect         307 to http://127.0.0.1:1/evil (a proxy must not follow it)
 *   fault-401              401 invalid_api_key whose message echoes the start and end of the key, as OpenAI's does
 *   fault-region           403 unsupported_country_region_territory (OpenAI's region block)
 *   fault-early-hints      an interim 103 Early Hints, then the normal answer
 * Stall/reset turn any request into a stream (a chat stream on paths that never stream).
 *
 * Stream timing per request (overriding the options): headers x-fake-ttft-ms, x-fake-chunk-gap-ms, x-fake-chunks,
 * x-fake-hold-end-ms.
 *
 * A strict upstream (an older Azure api-version, some OpenAI-compatible servers): per request
 * `x-fake-strict: stream_options`, a body with `stream_options` gets 400 "Unrecognized request
 * argument supplied: stream_options", and streams never carry a usage chunk.
 *
 * Azure (option `azure`): requests authenticate with an `api-key` header (`az-wrong` is refused with Azure's 401);
 * `/openai/deployments/<deployment>/<path>?api-version=…` is served as `/v1/<path>` with the deployment as the
 * model when the body names none (no `api-version`: Azure's 404), `/openai/v1/<path>` as `/v1/<path>`, and
 * `/openai/<path>?api-version=…` as `/v1/<path>`. The recorded path is the one Azure would see.
 *
 * Key faults (option `keyFaults`, e.g. `{"sk-limited": "fault-429"}`) answer every request made with that key
 * with the fault; `failNext(fault, n)` answers the next n requests with it.
 *
 * Realtime: `GET /v1/realtime?model=…` upgrades to a WebSocket session (see realtime.ts), recorded in `sessions`.
 *
 * Also: GET|POST /v1/echo reflects what it received; GET /__fake/requests and POST /__fake/reset are
 * unauthenticated control endpoints for other processes (they are not recorded).
 */
import { EventEmitter, once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { bearerKey, type Ctx, isRecord, newId, sendJson, type Timing } from "./http.js";
import { type RealtimeSession, realtimeUpgrades } from "./realtime.js";
import { handle } from "./routes.js";

export interface FakeOptions {
  port?: number;
  host?: "127.0.0.1";
  /** Delay before the first SSE event. */
  ttftMs?: number;
  /** Gap between SSE events. */
  chunkGapMs?: number;
  /** Number of content deltas in a streamed reply (default: one per word). */
  chunks?: number | undefined;
  /** Extra delay before the closing events ([DONE], usage, response.completed…). */
  holdEndMs?: number;
  /** Keep every request in `requests` (default true); the benchmark turns it off to stay lean. */
  record?: boolean;
  /** Answer as Azure OpenAI does (see the header comment): `api-key`, `/openai/deployments/<name>/…` with `api-version`, `/openai/v1/…`. */
  azure?: boolean;
  /** A fault for every request made with a given key (the key as sent, without `Bearer`). */
  keyFaults?: Record<string, string>;
}

export interface RecordedRequest {
  /** Also sent back as the `x-request-id` response header. */
  id: string;
  method: string;
  /** Path with query string. */
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  json?: unknown;
  receivedAt: number;
  finishedAt?: number;
  /** The client closed the connection before the response was complete. */
  clientClosedEarly: boolean;
  /** When the response's connection closed (set for every request once it is over). */
  closedAt?: number;
}

export interface FakeOpenAI {
  /** e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** The Realtime sessions opened over WebSocket, in order. */
  sessions: RealtimeSession[];
  waitForRequest(pred: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Applies `fault` (e.g. `fault-503`) to the next `count` requests, whatever they are. */
  failNext(fault: string, count?: number): void;
  /** Resolves once the response to `requestId` is over (finished or hung up); check `clientClosedEarly`. */
  waitForClose(requestId: string, timeoutMs?: number): Promise<RecordedRequest>;
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_WAIT_MS = 5000;

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseJson(rec: RecordedRequest): unknown {
  if (rec.body.length === 0 || rec.headers["content-type"]?.startsWith("multipart/")) return undefined;
  try {
    return JSON.parse(rec.body.toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Per-request overrides of the stream timing: `x-fake-ttft-ms`, `x-fake-chunk-gap-ms`, `x-fake-chunks`, `x-fake-hold-end-ms`. */
function timingFor(req: IncomingMessage, defaults: Timing): Timing {
  const header = (name: string): number | undefined => {
    const value = Number(req.headers[name]);
    return req.headers[name] !== undefined && Number.isFinite(value) && value >= 0 ? value : undefined;
  };
  return {
    ttftMs: header("x-fake-ttft-ms") ?? defaults.ttftMs,
    chunkGapMs: header("x-fake-chunk-gap-ms") ?? defaults.chunkGapMs,
    chunks: header("x-fake-chunks") ?? defaults.chunks,
    holdEndMs: header("x-fake-hold-end-ms") ?? defaults.holdEndMs,
  };
}

const toPlain = ({ body, ...rest }: RecordedRequest) => ({ ...rest, bodyBase64: body.toString("base64") });

export async function startFakeOpenAI(options: FakeOptions = {}): Promise<FakeOpenAI> {
  const { ttftMs = 0, chunkGapMs = 0, chunks, holdEndMs = 0 } = options;
  const timing: Timing = { ttftMs, chunkGapMs, chunks, holdEndMs };
  const events = new EventEmitter().setMaxListeners(0); // "request", "close" (a response is over), "shutdown"
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  /** Faults for the next requests (`failNext`). */
  const pending: string[] = [];
  let shuttingDown = false;

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname.startsWith("/__fake/")) return control(url, req, res);
    const rec: RecordedRequest = {
      id: newId("req_", 16),
      method: req.method ?? "GET",
      path: url.pathname + url.search,
      headers: flatHeaders(req),
      body: Buffer.alloc(0),
      receivedAt: Date.now(),
      clientClosedEarly: false,
    };
    const abort = new AbortController();
    const strict = req.headers["x-fake-strict"] === "stream_options";
    const ctx: Ctx = {
      req,
      res,
      rec,
      url,
      timing: timingFor(req, timing),
      signal: abort.signal,
      serverHangup: false,
      strict,
    };
    let recorded = false;
    const record = (): void => {
      if (recorded) return;
      recorded = true;
      if (options.record !== false) requests.push(rec);
      events.emit("request", rec);
    };
    res.once("finish", () => {
      rec.finishedAt = Date.now();
    });
    res.once("close", () => {
      rec.closedAt = Date.now();
      rec.clientClosedEarly = !res.writableFinished && !ctx.serverHangup && !shuttingDown;
      abort.abort(); // cancels every pending timer of this request
      record(); // in case the client left before its body was read
      events.emit("close", rec);
    });
    try {
      rec.body = await readBody(req);
    } catch {
      return; // the connection died mid-upload
    }
    rec.json = parseJson(rec);
    record();
    if (options.azure && !asAzure(ctx)) return;
    const key = bearerKey(req);
    const keyFault = key === undefined ? undefined : options.keyFaults?.[key];
    const next = pending.length > 0 ? pending.shift() : undefined;
    if (keyFault !== undefined || next !== undefined) req.headers["x-fake-fault"] = keyFault ?? next;
    await handle(ctx).catch((err: unknown) => {
      if (abort.signal.aborted) return; // a timer was cancelled because the response closed
      if (res.headersSent) res.destroy();
      else sendJson(ctx, 500, { error: { message: String(err), type: "server_error", param: null, code: null } });
    });
  }

  function control(url: URL, req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const route = `${req.method} ${url.pathname}`;
    if (route === "POST /__fake/reset") requests.length = 0;
    const known = route === "GET /__fake/requests" || route === "POST /__fake/reset";
    res.writeHead(known ? 200 : 404, { "content-type": "application/json", "access-control-allow-origin": "*" });
    const body = route === "GET /__fake/requests" ? requests.map(toPlain) : { ok: known };
    res.end(JSON.stringify(body));
  }

  /** Resolves with the first request matching `find`, now or when `event` fires; rejects on timeout or close(). */
  function waitFor(event: string, find: (r: RecordedRequest) => boolean, timeoutMs: number, why: () => string) {
    const hit = requests.find(find);
    if (hit) return Promise.resolve(hit);
    return new Promise<RecordedRequest>((resolve, reject) => {
      const settle = (err?: Error, r?: RecordedRequest): void => {
        clearTimeout(timer);
        events.off(event, onEvent).off("shutdown", onShutdown);
        if (r) resolve(r);
        else reject(err);
      };
      const onEvent = (r: RecordedRequest): void => {
        if (find(r)) settle(undefined, r);
      };
      const onShutdown = (): void => settle(new Error(`fake-openai: ${why()}, and the server was closed`));
      const timer = setTimeout(() => settle(new Error(`fake-openai: ${why()} after ${timeoutMs} ms`)), timeoutMs);
      events.on(event, onEvent).once("shutdown", onShutdown);
    });
  }
  const listRecorded = (): string => requests.map((r) => `${r.method} ${r.path}`).join(", ") || "none";
  const state = (id: string): string =>
    requests.some((r) => r.id === id) ? "the response is still open" : "no such request was recorded";

  const server = createServer((req, res) => void onRequest(req, res));
  const sessions: RealtimeSession[] = [];
  const realtime = realtimeUpgrades(sessions);
  server.on("upgrade", (req, socket, head) => realtime.onUpgrade(req, socket, head));
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    sessions,
    waitForRequest: (pred, timeoutMs = DEFAULT_WAIT_MS) =>
      waitFor("request", pred, timeoutMs, () => `waitForRequest: no request matched (recorded: ${listRecorded()})`),
    waitForClose: (id, timeoutMs = DEFAULT_WAIT_MS) =>
      waitFor(
        "close",
        (r) => r.id === id && r.closedAt !== undefined,
        timeoutMs,
        () => `waitForClose(${id}): ${state(id)}`,
      ),
    failNext: (fault, count = 1) => {
      for (let i = 0; i < count; i++) pending.push(fault);
    },
    reset: () => {
      pending.length = 0;
      requests.length = 0;
      sessions.length = 0;
    },
    close: () => {
      closing ??= (async () => {
        shuttingDown = true;
        events.emit("shutdown");
        realtime.close();
        const closed = new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
        await Promise.all([closed, ...[...sockets].map((socket) => once(socket.destroy(), "close"))]);
      })();
      return closing;
    },
  };
}

const AZURE_401 =
  "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an " +
  "active subscription and use a correct regional API endpoint for your resource.";

/**
 * Serves an Azure-shaped request as the OpenAI route it stands for (see the header comment): checks its
 * `api-key` and `api-version`, then rewrites the URL and the auth the routes read. False when it answered.
 */
function asAzure(ctx: Ctx): boolean {
  const { req, url } = ctx;
  const azureError = (status: number, message: string): false => {
    const body = JSON.stringify({ error: { code: String(status), message } });
    ctx.res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    ctx.res.end(body);
    return false;
  };
  const apiKey = req.headers["api-key"];
  if (typeof apiKey !== "string" || apiKey === "" || apiKey === "az-wrong") return azureError(401, AZURE_401);
  const deployment = /^\/openai\/deployments\/([^/]+)(\/.+)$/.exec(url.pathname);
  const v1 = /^\/openai\/v1(\/.+)$/.exec(url.pathname);
  const resource = /^\/openai(\/.+)$/.exec(url.pathname);
  let path: string;
  if (deployment !== null) {
    if (!url.searchParams.has("api-version")) return azureError(404, "Resource not found");
    path = deployment[2] ?? "";
    const model = decodeURIComponent(deployment[1] ?? "");
    if (isRecord(ctx.rec.json) && ctx.rec.json.model === undefined) ctx.rec.json.model = model;
  } else if (v1 !== null) {
    path = v1[1] ?? "";
  } else if (resource !== null && url.searchParams.has("api-version")) {
    path = resource[1] ?? "";
  } else {
    return azureError(404, "Resource not found");
  }
  url.pathname = `/v1${path}`;
  req.headers.authorization = `Bearer ${apiKey}`;
  return true;
}
