import { errorBody, ProxyError } from "../errors";

const encoder = new TextEncoder();

/** How a passed-through stream ended. */
export type StreamOutcome = "complete" | "cut" | "stalled" | "cancelled";

/**
 * Passes an upstream SSE body to the client chunk by chunk, as it arrives: no buffering, no
 * re-chunking, no parsing. When upstream breaks off or sends nothing for `idleTimeoutMs`, it
 * writes a final `data: {"error":…}` event before closing, because workerd would otherwise end
 * the client's response cleanly and the client would take a cut reply for a whole one.
 * Cancelling the returned stream (the client went away) cancels upstream.
 *
 * @example
 * const { body, done } = passThroughSse(upstream.body, 120_000);
 */
export function passThroughSse(
  upstream: ReadableStream<Uint8Array>,
  idleTimeoutMs: number,
): { body: ReadableStream<Uint8Array>; done: Promise<StreamOutcome> } {
  const reader = upstream.getReader();
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
        let timer: ReturnType<typeof setTimeout> | null = null;
        const stalled = new Promise<"stalled">((resolve) => {
          timer = setTimeout(() => resolve("stalled"), idleTimeoutMs);
        });
        try {
          const result = await Promise.race([reader.read(), stalled]);
          if (result === "stalled") {
            reader.cancel("upstream stalled").catch(() => {});
            end(controller, "stalled", `upstream sent nothing for ${idleTimeoutMs} ms; the reply is incomplete`);
          } else if (result.done) {
            controller.close();
            settle("complete");
          } else {
            controller.enqueue(result.value);
          }
        } catch {
          end(controller, "cut", "upstream connection was interrupted; the reply is incomplete");
        } finally {
          clearTimeout(timer);
        }
      },
      cancel(reason) {
        settle("cancelled");
        return reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );

  function end(controller: ReadableStreamDefaultController<Uint8Array>, outcome: StreamOutcome, message: string) {
    if (finished) return;
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
