import { describe, expect, it } from "vitest";
import { JsonUsageReader, readJsonUsage } from "./json-usage";

const encoder = new TextEncoder();

/** What a reader finds in `text` pushed in the given pieces. */
function read(pieces: readonly string[]) {
  const reader = new JsonUsageReader();
  for (const piece of pieces) reader.push(encoder.encode(piece));
  return reader.usage;
}

const CHAT = JSON.stringify({
  id: "chatcmpl-1",
  choices: [{ index: 0, message: { role: "assistant", content: 'a "usage": {"prompt_tokens": 999} \\ } ]' } }],
  usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
  system_fingerprint: "fp_1",
});

describe("JsonUsageReader", () => {
  it("reads the top-level usage wherever the body is split, never a usage-like string or a nested one", () => {
    for (let at = 0; at <= CHAT.length; at++) {
      expect(read([CHAT.slice(0, at), CHAT.slice(at)])?.promptTokens, `split at ${at}`).toBe(12);
    }
    expect(read([...CHAT])?.totalTokens).toBe(17);
    expect(read([JSON.stringify({ data: [{ usage: { prompt_tokens: 3 } }] })])).toBeNull();
  });

  it("reads past strings full of escapes, in one pass", () => {
    const content = '\\"'.repeat(200_000);
    const body = `{"output":"${content}","usage":{"input_tokens":7,"output_tokens":1}}`;
    expect(read([body])?.promptTokens).toBe(7);
    expect(read([body.slice(0, 100_001), body.slice(100_001)])?.promptTokens).toBe(7);
  });

  it("gives up on a usage value too large to be one, and on one that is not JSON", () => {
    const huge = `{"usage":{"prompt_tokens":1,"pad":"${"x".repeat(70_000)}"}}`;
    expect(read([huge])).toBeNull();
    expect(read(['{"usage":{"prompt_tokens":1,}}'])).toBeNull();
  });
});

/** A body that sends `pieces` and then ends, or errors when `error` is given. */
function body(pieces: readonly string[], error?: Error): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(encoder.encode(piece));
      if (error === undefined) controller.close();
      else controller.error(error);
    },
  });
}

describe("readJsonUsage", () => {
  const big = JSON.stringify({
    data: [{ embedding: Array.from({ length: 40_000 }, (_, i) => i / 7) }],
    usage: { prompt_tokens: 8, total_tokens: 8 },
  });

  it("finds what the byte reader finds, in a small body parsed whole and in a large one read as it passes", async () => {
    expect(big.length).toBeGreaterThan(256 * 1024);
    for (const text of [CHAT, big]) {
      const halves = [text.slice(0, text.length >> 1), text.slice(text.length >> 1)];
      expect(await readJsonUsage(body(halves))).toEqual(read(halves));
    }
    expect((await readJsonUsage(body([CHAT])))?.promptTokens).toBe(12);
    expect((await readJsonUsage(body([big])))?.promptTokens).toBe(8);
    expect(await readJsonUsage(body([JSON.stringify({ data: [{ usage: { prompt_tokens: 3 } }] })]))).toBeNull();
    expect(await readJsonUsage(body(["[1,2]"]))).toBeNull();
  });

  it("reads the usage of a body cut short after it, as the byte reader does", async () => {
    const cut = CHAT.slice(0, CHAT.indexOf("system_fingerprint"));
    expect((await readJsonUsage(body([cut])))?.promptTokens).toBe(12);
  });

  it("rejects when the body breaks off", async () => {
    await expect(readJsonUsage(body(['{"id":"x",'], new Error("upstream went away")))).rejects.toThrow(
      "upstream went away",
    );
  });
});
