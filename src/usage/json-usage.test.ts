import { describe, expect, it } from "vitest";
import { JsonUsageReader, readJsonAnswer } from "./json-usage";

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

/** A body that sends `pieces`, one per read, and then ends, or errors when `error` is given. */
function body(pieces: readonly string[], error?: Error): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream({
    pull(controller) {
      const piece = pieces[next++];
      if (piece !== undefined) controller.enqueue(encoder.encode(piece));
      else if (error === undefined) controller.close();
      else controller.error(error);
    },
  });
}

/** What `readJsonAnswer` hands on to the client, read to its end, and the usage it found. */
async function answer(pieces: readonly string[]) {
  const read = await readJsonAnswer(new Response(body(pieces)));
  return { text: await new Response(read.body).text(), usage: await read.usage };
}

describe("readJsonAnswer", () => {
  const big = JSON.stringify({
    data: [{ embedding: Array.from({ length: 40_000 }, (_, i) => i / 7) }],
    usage: { prompt_tokens: 8, total_tokens: 8 },
  });

  it("hands on every byte, and finds what the byte reader finds: in a small body read whole and a large one as it passes", async () => {
    expect(big.length).toBeGreaterThan(256 * 1024);
    for (const text of [CHAT, big]) {
      const halves = [text.slice(0, text.length >> 1), text.slice(text.length >> 1)];
      expect(await answer(halves)).toEqual({ text, usage: read(halves) });
    }
    expect((await answer([CHAT])).usage?.promptTokens).toBe(12);
    expect((await answer([big])).usage?.promptTokens).toBe(8);
    expect((await answer([JSON.stringify({ data: [{ usage: { prompt_tokens: 3 } }] })])).usage).toBeNull();
    expect((await answer(["[1,2]"])).usage).toBeNull();
  });

  it("reads a body whose content-length says it is small at once, and a large one as it passes", async () => {
    for (const text of [CHAT, big]) {
      const length = String(encoder.encode(text).byteLength);
      const read = await readJsonAnswer(new Response(body([text]), { headers: { "content-length": length } }));
      expect(read.body instanceof Uint8Array).toBe(text === CHAT);
      expect(await new Response(read.body).text()).toBe(text);
      expect((await read.usage)?.totalTokens).toBe(text === CHAT ? 17 : 8);
    }
  });

  it("reads the usage of a body cut short after it, as the byte reader does", async () => {
    const cut = CHAT.slice(0, CHAT.indexOf("system_fingerprint"));
    expect((await answer([cut])).usage?.promptTokens).toBe(12);
  });

  it("reads a large body to its end for its usage when the client leaves", async () => {
    const read = await readJsonAnswer(new Response(body([big.slice(0, 300_000), big.slice(300_000)])));
    await (read.body as ReadableStream).cancel("client went away");
    expect((await read.usage)?.promptTokens).toBe(8);
  });

  it("rejects when the body breaks off: at once when small, through its usage when large", async () => {
    await expect(readJsonAnswer(new Response(body(['{"id":"x",'], new Error("upstream went away"))))).rejects.toThrow(
      "upstream went away",
    );
    const read = await readJsonAnswer(new Response(body([big.slice(0, 300_000)], new Error("upstream went away"))));
    await expect(new Response(read.body).text()).rejects.toThrow();
    await expect(read.usage).rejects.toThrow("upstream went away");
  });
});
