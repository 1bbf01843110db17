import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { vi } from "vitest";
import type { Env } from "../env";
import worker from "../index";

/** The API key the test bindings give the Worker (see vitest.config.mts); no response or log may contain it. */
export const TEST_KEY = "sk-test-secret-key-0123456789abcdef";

/** Every response header and body text seen by `call` and `text`, checked for the key after each test. */
export const seen: string[] = [];

/** Every console line the Worker wrote during the current test. */
export const logged: string[] = [];

/** The Worker's per-request JSON log lines from the current test. */
export function requestLogs(): Record<string, unknown>[] {
  return logged
    .filter((line) => line.startsWith("{") && line.includes('"msg":"request"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * Sends a request through the Worker's real `fetch` with the test bindings plus `vars`.
 *
 * @example
 * const { response, ctx } = await call(new Request("http://proxy/health"));
 */
export async function call(
  request: Request,
  vars: Partial<Record<keyof Env, string>> | Partial<Env> = {},
): Promise<{ response: Response; ctx: ExecutionContext; settled: () => Promise<void> }> {
  const ctx = createExecutionContext();
  const incoming = request as Request<unknown, IncomingRequestCfProperties>;
  // The ledger is written directly unless a test binds a queue: a test then reads its record once the
  // request has settled (the queue's consumer has tests of its own, src/usage/ledger-queue.test.ts).
  const bindings = { ...env, USAGE_QUEUE: undefined, ...vars } as unknown as Env;
  const response = recorded(await worker.fetch(incoming, bindings, ctx));
  seen.push(JSON.stringify([...response.headers]));
  return { response, ctx, settled: () => waitOnExecutionContext(ctx) };
}

/** The same response, with every body chunk a test reads recorded for the key check, chunks unchanged. */
function recorded(response: Response): Response {
  if (response.body === null) return response;
  const decoder = new TextDecoder();
  const body = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen.push(decoder.decode(chunk, { stream: true }));
        controller.enqueue(chunk);
      },
    }),
  );
  return new Response(body, response);
}

/** Reads a response body as text. */
export function text(response: Response): Promise<string> {
  return response.text();
}

/** Reads a response body as JSON. */
export async function json<T = Record<string, unknown>>(response: Response): Promise<T> {
  return JSON.parse(await text(response)) as T;
}

/** A request to the proxy under test. */
export function proxyRequest(path: string, init: RequestInit = {}): Request {
  return new Request(`http://proxy.test${path}`, init);
}

/**
 * `request` with a signal the test aborts to make its client leave, as the runtime aborts a
 * request's signal when the client's connection closes (the proxy notices a client that only stops
 * reading at its next write).
 */
export function leavable(request: Request): { request: Request; leave: () => void } {
  const client = new AbortController();
  return { request: new Request(request, { signal: client.signal }), leave: () => client.abort() };
}

/** A JSON POST to the proxy under test. */
export function postJson(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  return proxyRequest(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/**
 * Replaces the Worker's outbound `fetch` with `handler`, which sees each upstream request as a
 * `Request` (url, headers, body, signal). Returns the recorded requests.
 *
 * @example
 * const upstream = mockUpstream(() => Response.json({ ok: true }));
 */
export function mockUpstream(handler: (request: Request) => Response | Promise<Response>): Request[] {
  const requests: Request[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    requests.push(request.clone());
    return handler(request);
  });
  return requests;
}

/** A JSON response as OpenAI sends it, with a request id. */
export function openaiJson(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers: { "x-request-id": "req_upstream123", ...headers } });
}

const encoder = new TextEncoder();

/**
 * A streaming upstream response: its body is a stream the test writes to, piece by piece.
 *
 * @example
 * const sse = controllableSse(); mockUpstream(() => sse.response); sse.send("data: {}\n\n"); sse.end();
 */
export function controllableSse(headers: Record<string, string> = {}) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled: (reason: unknown) => void = () => {};
  const cancellation = new Promise<unknown>((resolve) => {
    cancelled = resolve;
  });
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel(reason) {
      cancelled(reason);
    },
  });
  return {
    response: new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "x-request-id": "req_stream1", ...headers },
    }),
    send: (chunk: string | Uint8Array) => controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk),
    end: () => controller.close(),
    fail: (error: unknown) => controller.error(error),
    /** Settles when the proxy cancels the upstream body. */
    cancellation,
  };
}
