import { type ErrorShape, errorBody, ProxyError } from "../errors";
import type { SseFramer } from "./sse-framing";

const encoder = new TextEncoder();

/** How a passed-through stream ended. */
export type StreamOutcome = "complete" | "cut" | "stalled" | "cancelled";

export type SseOptions = {
  /** A stream that upstream leaves silent this long is ended with an error event. */
  idleTimeoutMs: number;
  /** The shape of that error event's JSON: the route's error shape. */
  shape: ErrorShape;
  /**
   * Frames the stream into whole events (and lets its reader read usage and drop the usage chunk
   * the proxy asked for). The runtime's socket reads can split an event that upstream wrote
   * whole, no client can act on half an event, and naive clients that split each read on newlines
   * (the original README's example) break on it. No complete event ever waits. Null passes
   * upstream's chunks through exactly as they come.
   */
  framer: SseFramer | null;
  /** Called after each upstream chunk has been read, before it goes on. */
  onChunk?: () => void;
  /**
   * The client's request signal: when it aborts (the client went away), upstream is cancelled at
   * once. Required: a client that leaves while upstream is silent is noticed only through it.
   */
  clientSignal: AbortSignal;
};

/**
 * Passes an upstream SSE body to the client as it arrives: no buffering, no parsing, the bytes
 * unchanged. When upstream breaks off, or stays silent for `idleTimeoutMs`, it writes a final
 * `data: {"error":…}` event before closing, because workerd would otherwise end the client's
 * response cleanly and the client would take a cut reply for a whole one. A client that goes away
 * (`clientSignal` aborts, or a write finds its side cancelled) cancels upstream.
 *
 * @example
 * const { body, done } = passThroughSse(upstream.body, { idleTimeoutMs: 300_000, shape: "openai", framer: null });
 */
export function passThroughSse(
  upstream: ReadableStream<Uint8Array>,
  options: SseOptions,
): { body: ReadableStream<Uint8Array>; done: Promise<StreamOutcome> } {
  const { idleTimeoutMs, shape, framer, onChunk, clientSignal } = options;
  const reader = upstream.getReader();
  let finished = false;
  let stalled = false;
  /** When the pending read began; null while the client is not asking for more (backpressure is not a stall). */
  let waitingSince: number | null = null;
  let resolveDone: (outcome: StreamOutcome) => void = () => {};
  const done = new Promise<StreamOutcome>((resolve) => {
    resolveDone = resolve;
  });

  // One idle timer for the whole stream, re-armed only when it fires early: no timer per chunk.
  let timer: ReturnType<typeof setTimeout> | null = null;
  const watch = (delay: number) => {
    timer = setTimeout(() => {
      const idle = waitingSince === null ? 0 : Date.now() - waitingSince;
      if (idle < idleTimeoutMs) return watch(idleTimeoutMs - idle);
      stalled = true;
      reader.cancel("upstream stalled").catch(() => {});
    }, delay);
  };
  watch(idleTimeoutMs);

  const settle = (outcome: StreamOutcome) => {
    finished = true;
    clearTimeout(timer);
    clientSignal.removeEventListener("abort", onClientGone);
    resolveDone(outcome);
  };
  // Where the runtime says so at once (request.signal), the client's leaving cancels upstream
  // without waiting for the next chunk to find nobody reading.
  function onClientGone() {
    if (finished) return;
    settle("cancelled");
    reader.cancel("client went away").catch(() => {});
    writer.abort("client went away").catch(() => {});
  }
  clientSignal.addEventListener("abort", onClientGone, { once: true });

  // The client's side is a native stream that the proxy writes to, one chunk at a time, each write
  // waiting until the client has taken the last one (no buffering). A JavaScript stream that the
  // runtime reads from would keep a few promises per chunk alive until the stream ends (workerd
  // does: bench/RESULTS.md), so a long stream's memory would grow with its length; this one's does
  // not. A client that cancels its side is noticed at the next write, or at once through
  // `clientSignal` (the request's signal, which the runtime aborts when the client goes away).
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  /** Writes `bytes` to the client; false when the client has gone (the stream is then cancelled). */
  const write = async (bytes: Uint8Array): Promise<boolean> => {
    try {
      await writer.write(bytes);
      return true;
    } catch {
      onClientGone();
      return false;
    }
  };

  const pump = async (): Promise<void> => {
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      waitingSince = Date.now();
      try {
        result = await reader.read();
      } catch {
        // Cancelling a pending read on a stall can reject it, as a cut would.
        return end(stalled ? "stalled" : "cut");
      } finally {
        waitingSince = null;
      }
      if (finished) return;
      if (stalled) return end("stalled");
      if (result.done) {
        const rest = framer?.flush() ?? null;
        if (rest !== null && !(await write(rest))) return;
        if (finished) return;
        settle("complete");
        return writer.close().catch(() => {});
      }
      const out = framer === null ? result.value : framer.push(result.value);
      onChunk?.();
      if (out !== null && !(await write(out))) return;
    }
  };

  /** Ends the client's stream with an error event: upstream broke off or went silent. */
  async function end(outcome: "cut" | "stalled"): Promise<void> {
    if (finished) return;
    settle(outcome);
    const rest = framer?.flush() ?? null;
    const message =
      outcome === "stalled"
        ? `upstream sent nothing for ${idleTimeoutMs} ms; the reply is incomplete`
        : "upstream connection was interrupted; the reply is incomplete";
    const error = new ProxyError(502, message, {
      code: outcome === "stalled" ? "upstream_stalled" : "upstream_interrupted",
    });
    if (rest !== null) await writer.write(rest).catch(() => {});
    // The blank line first ends any event that upstream left half-written.
    await writer.write(encoder.encode(`\n\ndata: ${errorBody(error, shape)}\n\n`)).catch(() => {});
    await writer.close().catch(() => {});
  }

  // A client already gone (it left while the proxy was choosing an upstream) is never written to.
  if (clientSignal.aborted) onClientGone();
  // A fault of the proxy's own while passing the stream (its framer, its reader) ends the stream
  // as a cut would, in-band, never with a stream left open and its outcome unsettled.
  pump().catch(() => {
    reader.cancel("proxy error").catch(() => {});
    return end("cut");
  });
  const body = readable;
  return { body, done };
}
