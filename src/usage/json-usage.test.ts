import { describe, expect, it } from "vitest";
import { JsonUsageReader } from "./json-usage";

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
