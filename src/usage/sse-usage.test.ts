import { describe, expect, it } from "vitest";
import { concatBytes } from "../lib/bytes";
import { SseFramer } from "../proxy/sse-framing";
import { SseUsageReader } from "./sse-usage";
import { plainUsage, type Usage } from "./usage";

/** A framer and its usage reader, as the proxy runs them on every stream. */
function createStreamTap(options: { dropUsageChunk: boolean }) {
  const reader = new SseUsageReader(options);
  const framer = new SseFramer(reader);
  return {
    push: (chunk: Uint8Array) => framer.push(chunk),
    flush: () => framer.flush(),
    get usage() {
      return reader.usage;
    },
    get events() {
      return reader.events;
    },
    get contentEvents() {
      return reader.contentEvents;
    },
  };
}
type StreamTap = ReturnType<typeof createStreamTap>;

/** A usage with the given counts, the others 0. */
const full = (counts: Partial<Usage>): Usage => ({ ...plainUsage(0, 0), ...counts });

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const CHUNK = {
  id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  object: "chat.completion.chunk",
  created: 1741570283,
  model: "gpt-4o-2024-08-06",
  service_tier: "default",
  system_fingerprint: "fp_eb9dce56a8",
};
const chatChunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ ...CHUNK, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage: null })}\n\n`;

/** The usage chunk OpenAI sends last when `stream_options.include_usage` is on. */
const CHAT_USAGE_EVENT = `data: ${JSON.stringify({
  ...CHUNK,
  choices: [],
  usage: {
    prompt_tokens: 1219,
    completion_tokens: 152,
    total_tokens: 1371,
    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 64,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  },
})}\n\n`;
const CHAT_USAGE: Usage = full({
  promptTokens: 1219,
  completionTokens: 152,
  totalTokens: 1371,
  cachedTokens: 1024,
  reasoningTokens: 64,
});

/** A chat stream with include_usage on: role, content with multi-byte text, a tool call, finish, usage, [DONE]. */
const CHAT_EVENTS = [
  chatChunk({ role: "assistant", content: "", refusal: null }),
  chatChunk({ content: "Café " }),
  chatChunk({ content: "你好 " }),
  chatChunk({ content: "👋" }),
  chatChunk({
    tool_calls: [{ index: 0, id: "call_Zq1", type: "function", function: { name: "get_weather", arguments: "" } }],
  }),
  chatChunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Zürich 🇨🇭"}' } }] }),
  chatChunk({}, "tool_calls"),
  CHAT_USAGE_EVENT,
  "data: [DONE]\n\n",
];
const CHAT = CHAT_EVENTS.join("");
const CHAT_WITHOUT_USAGE = CHAT_EVENTS.filter((e) => e !== CHAT_USAGE_EVENT).join("");

const RESPONSE = {
  id: "resp_67ccd2bed1ec8190",
  object: "response",
  created_at: 1741476542,
  model: "gpt-4.1-2025-04-14",
};
const responsesEvent = (type: string, payload: Record<string, unknown>) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`;
const message = (status: string, text: string | null) => ({
  id: "msg_67ccd2bf17f0",
  type: "message",
  status,
  role: "assistant",
  content: text === null ? [] : [{ type: "output_text", text, annotations: [] }],
});
const RESPONSES_USAGE = {
  input_tokens: 36,
  input_tokens_details: { cached_tokens: 18 },
  output_tokens: 87,
  output_tokens_details: { reasoning_tokens: 64 },
  total_tokens: 123,
};
/** A Responses API stream: `event:` and `data:` lines, text deltas, usage in `response.completed`. */
const RESPONSES_EVENTS = [
  responsesEvent("response.created", {
    sequence_number: 0,
    response: { ...RESPONSE, status: "in_progress", output: [], usage: null },
  }),
  responsesEvent("response.in_progress", {
    sequence_number: 1,
    response: { ...RESPONSE, status: "in_progress", output: [], usage: null },
  }),
  responsesEvent("response.output_item.added", {
    sequence_number: 2,
    output_index: 0,
    item: message("in_progress", null),
  }),
  responsesEvent("response.content_part.added", {
    sequence_number: 3,
    item_id: "msg_67ccd2bf17f0",
    output_index: 0,
    content_index: 0,
    part: { type: "output_text", text: "", annotations: [] },
  }),
  ...["Café ", "你好 ", "👋"].map((delta, i) =>
    responsesEvent("response.output_text.delta", {
      sequence_number: 4 + i,
      item_id: "msg_67ccd2bf17f0",
      output_index: 0,
      content_index: 0,
      delta,
      logprobs: [],
    }),
  ),
  responsesEvent("response.output_text.done", {
    sequence_number: 7,
    item_id: "msg_67ccd2bf17f0",
    output_index: 0,
    content_index: 0,
    text: "Café 你好 👋",
    logprobs: [],
  }),
  responsesEvent("response.output_item.done", {
    sequence_number: 8,
    output_index: 0,
    item: message("completed", "Café 你好 👋"),
  }),
  responsesEvent("response.completed", {
    sequence_number: 9,
    response: {
      ...RESPONSE,
      status: "completed",
      output: [message("completed", "Café 你好 👋")],
      usage: RESPONSES_USAGE,
    },
  }),
];
const RESPONSES = RESPONSES_EVENTS.join("");

type Run = { out: Uint8Array[]; rest: Uint8Array | null; tap: StreamTap };

function run(chunks: Uint8Array[], dropUsageChunk: boolean): Run {
  const tap = createStreamTap({ dropUsageChunk });
  const out: Uint8Array[] = [];
  for (const chunk of chunks) {
    const forwarded = tap.push(chunk);
    // Nothing to forward is null, never an empty array.
    if (forwarded?.byteLength === 0) throw new Error("push returned an empty array");
    if (forwarded !== null) out.push(forwarded);
  }
  return { out, rest: tap.flush(), tap };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

const LF = 0x0a;
const CR = 0x0d;
/**
 * Whether every forwarded chunk ends where a blank line (`\n\n`, `\r\n\r\n`, `\n\r\n`) ends an event of
 * the forwarded stream, a lone blank line right after an event included.
 */
function allEndEvents(out: Uint8Array[]): boolean {
  const all = concatBytes(out);
  const at = (i: number) => (i < 0 ? LF : all[i]);
  let end = 0;
  for (const chunk of out) {
    end += chunk.byteLength;
    if (at(end - 1) !== LF) return false;
    if (at(end - 2) !== LF && (at(end - 2) !== CR || at(end - 3) !== LF)) return false;
  }
  return true;
}

/** Every way to split `stream` in two, and one byte at a time. */
function splits(stream: Uint8Array): Uint8Array[][] {
  const all: Uint8Array[][] = [];
  for (let cut = 1; cut < stream.byteLength; cut++) all.push([stream.slice(0, cut), stream.slice(cut)]);
  all.push([...stream].map((byte) => Uint8Array.of(byte)));
  return all;
}

type Expected = { dropped: string; usage: Usage | null; events: number; content: number };

/**
 * Checks the tap's contract on one stream for every split, with and without removal: the bytes out
 * are the bytes in (less the usage event when removing), every forwarded chunk ends an event,
 * nothing is left for flush, usage and counts are exact. Failures are gathered and asserted once:
 * thousands of `expect` calls would be slower than the tap.
 */
function expectExactAtEverySplit(stream: string, expected: Expected) {
  const bytes = encoder.encode(stream);
  const failures: string[] = [];
  let runs = 0;
  for (const dropUsageChunk of [false, true]) {
    const want = encoder.encode(dropUsageChunk ? expected.dropped : stream);
    for (const chunks of splits(bytes)) {
      runs++;
      const { out, rest, tap } = run(chunks, dropUsageChunk);
      const where = `${chunks.length} chunks, the first ${chunks[0]?.byteLength} bytes, dropUsageChunk ${dropUsageChunk}:`;
      if (!sameBytes(concatBytes(out), want)) failures.push(`${where} bytes differ`);
      if (rest !== null) failures.push(`${where} flush returned ${rest.byteLength} bytes`);
      if (!allEndEvents(out)) failures.push(`${where} a forwarded chunk ends mid-event`);
      if (JSON.stringify(tap.usage) !== JSON.stringify(expected.usage))
        failures.push(`${where} usage ${JSON.stringify(tap.usage)}`);
      if (tap.events !== expected.events) failures.push(`${where} ${tap.events} events`);
      if (tap.contentEvents !== expected.content) failures.push(`${where} ${tap.contentEvents} content events`);
    }
  }
  expect(failures.slice(0, 10)).toEqual([]);
  expect(runs).toBe(2 * bytes.byteLength);
}

describe("SseFramer with SseUsageReader", () => {
  it("passes a chat stream through byte for byte at every split, reading its usage exactly", () => {
    expectExactAtEverySplit(CHAT, { dropped: CHAT_WITHOUT_USAGE, usage: CHAT_USAGE, events: 9, content: 4 });
  });

  it("finds events ended by CRLF blank lines, even when the blank line straddles two chunks", () => {
    const crlf = (s: string) => s.replaceAll("\n", "\r\n");
    expectExactAtEverySplit(crlf(CHAT), {
      dropped: crlf(CHAT_WITHOUT_USAGE),
      usage: CHAT_USAGE,
      events: 9,
      content: 4,
    });
  });

  it("reads a Responses API stream's usage from response.completed and removes nothing from it", () => {
    expectExactAtEverySplit(RESPONSES, {
      dropped: RESPONSES,
      usage: full({ promptTokens: 36, completionTokens: 87, totalTokens: 123, cachedTokens: 18, reasoningTokens: 64 }),
      events: 10,
      content: 3,
    });
  });

  it("keeps comments, stray blank lines and mixed line ends byte for byte at every split", () => {
    const usage = 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\r\n\r\n';
    const stream = [
      ": keep-alive\n\n",
      "\n",
      'data: {"choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}\n\r\n',
      "retry: 1000\n\n",
      'data: {"choices":[{"index":0,\r\ndata: "delta":{"content":"b"}}],"usage":null}\r\n\n',
      usage,
      "data: [DONE]\n\n",
    ].join("");
    expectExactAtEverySplit(stream, {
      dropped: stream.replace(usage, ""),
      usage: full({ promptTokens: 3, completionTokens: 2, totalTokens: 5 }),
      events: 4,
      content: 2,
    });
  });

  it("forwards chunks that end on an event boundary as the same objects", () => {
    const chunks = [CHAT_EVENTS.slice(0, 3).join(""), ...CHAT_EVENTS.slice(3)].map((e) => encoder.encode(e));
    const { out } = run(chunks, false);
    expect(out.length).toBe(chunks.length);
    out.forEach((chunk, i) => {
      expect(chunk).toBe(chunks[i]);
    });
  });

  it("is back on the fast path as soon as a held event has been completed", () => {
    const [first = "", second = ""] = CHAT_EVENTS;
    const whole = encoder.encode(second);
    const { out } = run([encoder.encode(first.slice(0, 20)), encoder.encode(first.slice(20)), whole], false);
    expect(out).toHaveLength(2);
    expect(decoder.decode(out[0])).toBe(first);
    expect(out[1]).toBe(whole);
  });

  it("removes the usage chunk alone, passing every other chunk on as the same object", () => {
    const chunks = CHAT_EVENTS.map((e) => encoder.encode(e));
    const { out, tap } = run(chunks, true);
    expect(out).toEqual(chunks.filter((_, i) => CHAT_EVENTS[i] !== CHAT_USAGE_EVENT));
    out.forEach((chunk) => {
      expect(chunks).toContain(chunk);
    });
    expect(tap.usage).toEqual(CHAT_USAGE);
  });

  it("removes the usage chunk from the middle of a chunk", () => {
    const stream = encoder.encode(CHAT_EVENTS.slice(-3).join(""));
    const { out } = run([stream], true);
    expect(decoder.decode(concatBytes(out))).toBe(`${CHAT_EVENTS.at(-3)}data: [DONE]\n\n`);
  });

  it("holds a partial event and returns it from flush when the stream is cut, with no usage", () => {
    const bytes = encoder.encode(CHAT);
    const cut = CHAT.indexOf(CHAT_USAGE_EVENT) + 40;
    const cutAt = encoder.encode(CHAT.slice(0, cut)).byteLength;
    const { out, rest, tap } = run([bytes.slice(0, cutAt - 10), bytes.slice(cutAt - 10, cutAt)], true);
    expect(decoder.decode(concatBytes(out))).toBe(CHAT_EVENTS.slice(0, 7).join(""));
    expect(decoder.decode(rest ?? new Uint8Array())).toBe(CHAT_USAGE_EVENT.slice(0, 40));
    expect(tap.usage).toBeNull();
    expect(tap.events).toBe(7);
    expect(tap.contentEvents).toBe(4);
    expect(tap.flush()).toBeNull();
  });

  it("counts the events of a stream cut in the middle of its content", () => {
    const bytes = encoder.encode(CHAT);
    const cutAt = encoder.encode(CHAT_EVENTS.slice(0, 3).join("") + CHAT_EVENTS[3]?.slice(0, 30)).byteLength;
    const { out, rest, tap } = run([bytes.slice(0, cutAt)], false);
    expect(decoder.decode(concatBytes(out))).toBe(CHAT_EVENTS.slice(0, 3).join(""));
    expect(concatBytes([...out, rest ?? new Uint8Array()])).toEqual(bytes.slice(0, cutAt));
    expect(tap.usage).toBeNull();
    expect(tap.events).toBe(3);
    expect(tap.contentEvents).toBe(2);
  });

  it("keeps a multi-byte character split across chunks byte-identical", () => {
    const bytes = encoder.encode(chatChunk({ content: "👋" }));
    const split = bytes.indexOf(0xf0) + 2;
    const { out } = run([bytes.slice(0, split), bytes.slice(split)], false);
    expect(out).toHaveLength(1);
    expect(out[0]).toEqual(bytes);
  });

  it('reads usage whatever the JSON spacing, and ignores comments and "usage":null', () => {
    const stream = [
      ": keep-alive\n\n",
      'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}\n\n',
      'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}\n\n',
    ].join("");
    const { out, tap } = run([encoder.encode(stream)], true);
    expect(decoder.decode(concatBytes(out))).toBe(stream.slice(0, stream.indexOf('data: {"choices": []')));
    expect(tap.usage).toEqual({
      ...full({}),
      promptTokens: 3,
      completionTokens: 1,
      totalTokens: 4,
      cachedTokens: 0,
      reasoningTokens: 0,
    });
    expect(tap.events).toBe(2);
    expect(tap.contentEvents).toBe(1);
  });

  it("leaves a usage that arrives with choices in place", () => {
    const stream =
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n';
    const chunk = encoder.encode(stream);
    const { out, tap } = run([chunk], true);
    expect(out[0]).toBe(chunk);
    expect(tap.usage?.totalTokens).toBe(4);
  });

  it("passes an event too large to hold on in pieces instead of buffering it", () => {
    const huge = new Uint8Array(9 * 1024 * 1024).fill(0x61);
    huge.set(encoder.encode("data: "));
    const end = encoder.encode("aaa\n\ndata: [DONE]\n\n");
    const { out, rest, tap } = run([huge, end], false);
    expect(out[0]).toBe(huge);
    expect(out[1]).toBe(end);
    expect(rest).toBeNull();
    expect(tap.events).toBe(2);
  });
});
