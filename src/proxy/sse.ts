import { errorBody, ProxyError } from "../errors";

const encoder = new TextEncoder();
const LF = 0x0a;
const CR = 0x0d;
/** A line longer than this is passed on in pieces rather than held. */
const MAX_HELD_BYTES = 64 * 1024;

/** How a passed-through stream ended. */
export type StreamOutcome = "complete" | "cut" | "stalled" | "cancelled";

/**
 * Passes an upstream SSE body to the client as it arrives: no buffering, no parsing, the bytes
 * unchanged. Chunks go out as they come, with one exception: a chunk that stops in the middle of
 * a line is held until the rest of that line arrives (usually in the very next read), because the
 * runtime's socket reads can split an event that upstream wrote whole, and no client can act on
 * half a line, while naive clients that split each read on newlines break on it.
 *
 * When upstream breaks off, or sends nothing for `idleTimeoutMs`, it writes a final
 * `data: {"error":…}` event before closing, because workerd would otherwise end the client's
 * response cleanly and the client would take a cut reply for a whole one. Cancelling the
 * returned stream (the client went away) cancels upstream.
 *
 * @example
 * const { body, done } = passThroughSse(upstream.body, 120_000);
 */
export function passThroughSse(
  upstream: ReadableStream<Uint8Array>,
  idleTimeoutMs: number,
): { body: ReadableStream<Uint8Array>; done: Promise<StreamOutcome> } {
  const reader = upstream.getReader();
  let held: Uint8Array | null = null;
  let finished = false;
  let resolveDone: (outcome: StreamOutcome) => void = () => {};
  const done = new Promise<StreamOutcome>((resolve) => {
    resolveDone = resolve;
  });
  const settle = (outcome: StreamOutcome) => {
    finished = true;
    resolveDone(outcome);
  };

  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          const result = await readWithin(reader, idleTimeoutMs).catch(() => "cut" as const);
          if (result === "stalled" || result === "cut") {
            if (result === "stalled") reader.cancel("upstream stalled").catch(() => {});
            return end(controller, result);
          }
          if (result.done) {
            if (held !== null) controller.enqueue(held);
            held = null;
            controller.close();
            return settle("complete");
          }
          const chunk: Uint8Array = held === null ? result.value : join(held, result.value);
          held = null;
          if (endsLine(chunk) || chunk.byteLength > MAX_HELD_BYTES) return controller.enqueue(chunk);
          held = chunk;
        }
      },
      cancel(reason) {
        settle("cancelled");
        return reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );

  function end(controller: ReadableStreamDefaultController<Uint8Array>, outcome: "cut" | "stalled") {
    if (finished) return;
    if (held !== null) controller.enqueue(held);
    held = null;
    const message =
      outcome === "stalled"
        ? `upstream sent nothing for ${idleTimeoutMs} ms; the reply is incomplete`
        : "upstream connection was interrupted; the reply is incomplete";
    const error = new ProxyError(502, message, {
      code: outcome === "stalled" ? "upstream_stalled" : "upstream_interrupted",
    });
    // The blank line first ends any event that upstream left half-written.
    controller.enqueue(encoder.encode(`\n\ndata: ${errorBody(error, "openai")}\n\n`));
    controller.close();
    settle(outcome);
  }

  return { body, done };
}

/** The next read, or "stalled" when nothing arrives within `timeoutMs`. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  timeoutMs: number,
): Promise<ReadableStreamReadResult<Uint8Array> | "stalled"> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const stalled = new Promise<"stalled">((resolve) => {
    timer = setTimeout(() => resolve("stalled"), timeoutMs);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

function endsLine(chunk: Uint8Array): boolean {
  const last = chunk[chunk.byteLength - 1];
  return last === LF || last === CR;
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
