import { describe, expect, it } from "vitest";
import { concatBytes } from "../lib/bytes";
import { SseUsageReader } from "../usage/sse-usage";
import { passThroughSse, type SseOptions } from "./sse";
import { SseFramer } from "./sse-framing";

const RAW: SseOptions = {
  idleTimeoutMs: 60_000,
  shape: "openai",
  framer: null,
  clientSignal: new AbortController().signal,
};
/** Framed, with a usage reader, as every forwarded stream is: whole events only. */
const tapped = (): SseOptions => ({ ...RAW, framer: new SseFramer(new SseUsageReader({ dropUsageChunk: false })) });

const encoder = new TextEncoder();

/** A real-looking chat stream with multi-byte characters (é, 你好, 👋) in it. */
const STREAM = encoder.encode(
  [
    'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}',
    'data: {"choices":[{"delta":{"content":"Café "}}]}',
    'data: {"choices":[{"delta":{"content":"你好 👋"}}]}',
    "data: [DONE]",
  ]
    .map((event) => `${event}\n\n`)
    .join(""),
);

/** Hands out `chunks` one read at a time, then ends or errors as a cut connection does. */
/** Where the first event of STREAM ends. */
const FIRST_EVENT_END = new TextDecoder().decode(STREAM).indexOf("\n\n") + 2;

function streamOf(chunks: Uint8Array[], ending: "close" | "error" = "close"): ReadableStream<Uint8Array> {
  const queue = [...chunks];
  return new ReadableStream({
    pull(controller) {
      const chunk = queue.shift();
      if (chunk !== undefined) controller.enqueue(chunk);
      else if (ending === "close") controller.close();
      else controller.error(new Error("connection reset"));
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

describe("passThroughSse", () => {
  it("passes upstream's chunks through exactly as they came, split lines included", async () => {
    for (let cut = 1; cut < STREAM.byteLength; cut++) {
      const chunks = [STREAM.slice(0, cut), STREAM.slice(cut)];
      const { body, done } = passThroughSse(streamOf(chunks), RAW);
      expect(await collect(body)).toEqual(chunks);
      expect(await done).toBe("complete");
    }
  });

  it("with a tap, joins a split event and still passes the bytes unchanged at every byte boundary", async () => {
    for (let cut = 1; cut < STREAM.byteLength; cut++) {
      const chunks = [STREAM.slice(0, cut), STREAM.slice(cut)];
      const { body, done } = passThroughSse(streamOf(chunks), tapped());
      const out = await collect(body);
      expect(concatBytes(out)).toEqual(STREAM);
      // Whole events stay as they came; a split event is joined, so every chunk ends an event.
      for (const chunk of out) expect(chunk.slice(-2)).toEqual(Uint8Array.of(0x0a, 0x0a));
      // Everything whole before the cut goes at once; the split event follows, whole, with the rest.
      expect(out.length).toBe(cut < FIRST_EVENT_END ? 1 : 2);
      expect(await done).toBe("complete");
    }
  });

  it("with a tap, keeps upstream's chunks as they are when they end on an event", async () => {
    const events = ["data: 1\n\n", "data: 2\n\ndata: 3\n\n"].map((e) => encoder.encode(e));
    const out = await collect(passThroughSse(streamOf(events), tapped()).body);
    expect(out).toEqual(events);
  });

  it("with a tap, passes one byte at a time through unchanged, an event at a time", async () => {
    const chunks = [...STREAM].map((byte) => Uint8Array.of(byte));
    const { body } = passThroughSse(streamOf(chunks), tapped());
    const out = await collect(body);
    expect(concatBytes(out)).toEqual(STREAM);
    expect(out.map((c) => new TextDecoder().decode(c))).toEqual(new TextDecoder().decode(STREAM).split(/(?<=\n\n)/));
  });

  it("passes on the end of a stream that does not end a line", async () => {
    const out = await collect(passThroughSse(streamOf([encoder.encode("data: 1\n\ndata: x")]), tapped()).body);
    expect(new TextDecoder().decode(concatBytes(out))).toBe("data: 1\n\ndata: x");
  });

  it("forwards each chunk as soon as it arrives, before upstream has finished", async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const upstream = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
    });
    const reader = passThroughSse(upstream, RAW).body.getReader();
    controller.enqueue(encoder.encode("data: 1\n\n"));
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("data: 1\n\n");
    controller.enqueue(encoder.encode("data: 2\n\n"));
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("data: 2\n\n");
    controller.close();
    expect((await reader.read()).done).toBe(true);
  });

  it("ends a stream that upstream cut with an SSE error event, never a clean end", async () => {
    const { body, done } = passThroughSse(streamOf([STREAM.slice(0, 40)], "error"), RAW);
    const text = new TextDecoder().decode(concatBytes(await collect(body)));
    expect(text.startsWith(new TextDecoder().decode(STREAM.slice(0, 40)))).toBe(true);
    const last = text.trimEnd().split("\n").at(-1) ?? "";
    expect(JSON.parse(last.slice("data: ".length))).toEqual({
      error: {
        message: expect.stringContaining("interrupted"),
        type: "server_error",
        param: null,
        code: "upstream_interrupted",
      },
    });
    expect(text).not.toContain("[DONE]");
    expect(await done).toBe("cut");
  });

  it("writes the error event in the seed's shape on the seed route", async () => {
    const { body } = passThroughSse(streamOf([STREAM.slice(0, 40)], "error"), { ...tapped(), shape: "seed" });
    const last =
      new TextDecoder()
        .decode(concatBytes(await collect(body)))
        .trimEnd()
        .split("\n")
        .at(-1) ?? "";
    expect(JSON.parse(last.slice("data: ".length))).toMatchObject({
      error: "Bad Gateway",
      message: expect.stringContaining("interrupted"),
    });
  });

  it("does not take a client that reads slowly for a stalled upstream", async () => {
    const upstream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(encoder.encode("data: 1\n\n"));
        c.enqueue(encoder.encode("data: 2\n\n"));
        c.close();
      },
    });
    const reader = passThroughSse(upstream, { ...RAW, idleTimeoutMs: 10 }).body.getReader();
    await reader.read();
    await scheduler.wait(40);
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("data: 2\n\n");
  });

  it("ends a stalled stream with an SSE error event and cancels upstream", async () => {
    let cancelled = false;
    const upstream = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(encoder.encode("data: 1\n\n")),
      cancel() {
        cancelled = true;
      },
    });
    const { body, done } = passThroughSse(upstream, { ...RAW, idleTimeoutMs: 20 });
    const text = new TextDecoder().decode(concatBytes(await collect(body)));
    expect(text).toMatch(/^data: 1\n\n\n\ndata: \{"error":\{.*"code":"upstream_stalled"\}\}\n\n$/);
    expect(await done).toBe("stalled");
    expect(cancelled).toBe(true);
  });

  it("notices a client that cancels without its signal firing at the next write, and cancels upstream", async () => {
    let reason: unknown;
    let next: ReadableStreamDefaultController<Uint8Array> | undefined;
    const upstream = new ReadableStream<Uint8Array>({
      start: (c) => {
        next = c;
        c.enqueue(encoder.encode("data: 1\n\n"));
      },
      cancel(r) {
        reason = r;
      },
    });
    const { body, done } = passThroughSse(upstream, RAW);
    const reader = body.getReader();
    await reader.read();
    await reader.cancel("client went away");
    next?.enqueue(encoder.encode("data: 2\n\n"));
    expect(await done).toBe("cancelled");
    expect(reason).toBe("client went away");
  });

  it("writes nothing for a client already gone, and cancels upstream", async () => {
    let cancelled = false;
    const upstream = new ReadableStream<Uint8Array>({
      cancel() {
        cancelled = true;
      },
    });
    const client = new AbortController();
    client.abort();
    const { done } = passThroughSse(upstream, { ...RAW, clientSignal: client.signal });
    expect(await done).toBe("cancelled");
    expect(cancelled).toBe(true);
  });

  it("ends the stream in-band as a cut when the proxy's own framer fails", async () => {
    const failing = {
      push: () => {
        throw new Error("framer bug");
      },
      flush: () => null,
    } as unknown as SseFramer;
    const { body, done } = passThroughSse(streamOf([STREAM]), { ...RAW, framer: failing });
    const text = new TextDecoder().decode(concatBytes(await collect(body)));
    expect(text).toContain("upstream_interrupted");
    expect(await done).toBe("cut");
  });

  it("cancels upstream when the client cancels", async () => {
    let reason: unknown;
    const upstream = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(encoder.encode("data: 1\n\n")),
      cancel(r) {
        reason = r;
      },
    });
    const client = new AbortController();
    const { body, done } = passThroughSse(upstream, { ...RAW, clientSignal: client.signal });
    const reader = body.getReader();
    await reader.read();
    await reader.cancel("client went away");
    client.abort();
    expect(reason).toBe("client went away");
    expect(await done).toBe("cancelled");
  });
});
