import { describe, expect, it } from "vitest";
import { type JsonObject, readJsonObject } from "../lib/json-object";
import {
  billingOf,
  DEFAULT_OUTPUT_RESERVATION,
  defaultOutputCap,
  FILE_INPUT_TOKENS,
  IMAGE_INPUT_TOKENS,
  imageOutputTokens,
  jsonInputTokens,
  REASONING_OUTPUT_RESERVATION,
  reservationFor,
  STORED_CONTEXT_TOKENS,
  UPLOAD_BYTES_PER_TOKEN,
  uploadInputTokens,
} from "./reservation";

function object(value: unknown): JsonObject {
  const json = readJsonObject(new TextEncoder().encode(JSON.stringify(value)));
  if (json === null) throw new Error("not an object");
  return json;
}

const size = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).byteLength;
const base64 = (bytes: number) => "QUJD".repeat(Math.ceil(bytes / 4)).slice(0, bytes);

describe("jsonInputTokens", () => {
  it("counts text at a token a byte at most and a quarter of that likely", () => {
    const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello ".repeat(1000) }] };
    expect(jsonInputTokens(object(body))).toEqual({ ceiling: size(body), estimate: Math.ceil(size(body) / 4) });
  });

  it("counts an image by what an image costs, however many bytes it has", () => {
    const image = `data:image/png;base64,${base64(3_000_000)}`;
    const body = {
      model: "gpt-4o",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: image } }] }],
    };
    const text = size(body) - image.length;
    expect(jsonInputTokens(object(body))).toEqual({
      ceiling: text + IMAGE_INPUT_TOKENS,
      estimate: Math.ceil(text / 4) + IMAGE_INPUT_TOKENS,
    });
  });

  it("counts a long base64-looking string as text when it stands where no payload goes: no discount to be had", () => {
    // Text dressed as base64 under "content", or a data: URL under a key that takes no image.
    for (const disguised of [
      { messages: [{ role: "user", content: base64(200_000) }] },
      { messages: [{ role: "user", content: `data:image/png;base64,${base64(200_000)}` }] },
      {
        input: [{ role: "user", content: [{ type: "input_text", text: `data:image/png;base64,${base64(200_000)}` }] }],
      },
    ]) {
      expect(jsonInputTokens(object(disguised)).ceiling, JSON.stringify(disguised).slice(0, 80)).toBe(size(disguised));
    }
  });

  it("counts a data: URL under an image key that is not base64 as text", () => {
    const body = {
      messages: [
        {
          role: "user",
          content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${"a b ".repeat(50_000)}` } }],
        },
      ],
    };
    expect(jsonInputTokens(object(body)).ceiling).toBe(size(body) + IMAGE_INPUT_TOKENS);
  });

  it("counts inline audio by its length at speech's rate, and inline files at a token per four bytes", () => {
    const audio = base64(600_000);
    const withAudio = {
      messages: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: audio, format: "wav" } }] }],
    };
    expect(jsonInputTokens(object(withAudio)).ceiling).toBe(
      size(withAudio) - audio.length + audio.length / UPLOAD_BYTES_PER_TOKEN,
    );
    const file = base64(400_000);
    const withFile = { input: [{ role: "user", content: [{ type: "input_file", file_data: file }] }] };
    expect(jsonInputTokens(object(withFile)).ceiling).toBe(size(withFile) - file.length + file.length / 4);
  });

  it("reserves what it cannot see: a file by id, and stored context", () => {
    const byId = { input: [{ role: "user", content: [{ type: "input_file", file_id: "file-1" }] }] };
    expect(jsonInputTokens(object(byId)).ceiling).toBe(size(byId) + FILE_INPUT_TOKENS);
    for (const stored of [
      { previous_response_id: "resp_1" },
      { conversation: "conv_1" },
      { prompt: { id: "pmpt_1" } },
    ]) {
      expect(jsonInputTokens(object(stored)).ceiling).toBe(size(stored) + STORED_CONTEXT_TOKENS);
    }
    // A prompt that is text (completions, images) is only text.
    const text = { model: "gpt-image-1", prompt: "a cat" };
    expect(jsonInputTokens(object(text)).ceiling).toBe(size(text));
  });
});

describe("reservationFor", () => {
  const input = { ceiling: 100, estimate: 25 };

  it("reserves the request's cap times its choices, best_of and prompts included", () => {
    expect(reservationFor("/chat/completions", { input, cap: 500, fields: { n: 3 } }).outputTokens).toBe(1500);
    expect(
      reservationFor("/completions", { input, cap: 100, fields: { n: 2, best_of: 5, prompts: 4 } }).outputTokens,
    ).toBe(2000);
    expect(reservationFor("/responses", { input, cap: 700, fields: { n: 9 } }).outputTokens).toBe(700);
  });

  it("reserves the model's default cap for a request that names none: more for reasoning models", () => {
    expect(
      reservationFor("/chat/completions", { input, cap: null, model: "gpt-4o-mini", fields: {} }).outputTokens,
    ).toBe(DEFAULT_OUTPUT_RESERVATION);
    expect(reservationFor("/responses", { input, cap: null, model: "o4-mini", fields: {} }).outputTokens).toBe(
      REASONING_OUTPUT_RESERVATION,
    );
    expect(defaultOutputCap("gpt-5-mini")).toBe(REASONING_OUTPUT_RESERVATION);
    expect(defaultOutputCap("ft:o3-mini:acme::1")).toBe(REASONING_OUTPUT_RESERVATION);
    expect(defaultOutputCap(null)).toBe(DEFAULT_OUTPUT_RESERVATION);
  });

  it("reserves images by count, quality and size, at their most when unsaid", () => {
    expect(imageOutputTokens({ quality: "low", size: "1024x1024", n: 2 })).toBe(544);
    expect(imageOutputTokens({})).toBe(6240);
    expect(imageOutputTokens({ quality: "medium", size: "1024x1024", partialImages: 2 })).toBe(1256);
    expect(
      reservationFor("/images/generations", { input, cap: null, fields: { quality: "high", size: "1536x1024", n: 2 } }),
    ).toEqual({
      inputTokens: 100,
      inputEstimate: 25,
      outputTokens: 12_416,
    });
  });

  it("reserves speech by its input, and nothing for embeddings' output", () => {
    expect(
      reservationFor("/audio/speech", { input: { ceiling: 1000, estimate: 250 }, cap: null, fields: {} }).outputTokens,
    ).toBe(2000);
    expect(
      reservationFor("/audio/speech", { input: { ceiling: 10, estimate: 3 }, cap: null, fields: {} }).outputTokens,
    ).toBe(256);
    expect(reservationFor("/embeddings", { input, cap: null, fields: {} }).outputTokens).toBe(0);
  });
});

describe("uploadInputTokens and billingOf", () => {
  it("counts image uploads by file and audio by bytes, an hour at most", () => {
    expect(uploadInputTokens("/images/edits", { bytes: 9_000_000, files: 2 })).toBe(2 * IMAGE_INPUT_TOKENS + 1024);
    expect(uploadInputTokens("/audio/transcriptions", { bytes: 600_000, files: 1 })).toBe(10_000);
    expect(uploadInputTokens("/audio/transcriptions", { bytes: 90_000_000, files: 1 })).toBe(60_000);
  });

  it("bills tokens for POSTs to generating endpoints, reports for other POSTs, nothing for reads", () => {
    expect(billingOf("POST", "/chat/completions")).toBe("tokens");
    expect(billingOf("POST", "/batches")).toBe("reported");
    expect(billingOf("GET", "/responses/resp_1")).toBe("free");
    expect(billingOf("DELETE", "/files/file-1")).toBe("free");
    // Free POSTs whose answers repeat a usage already billed: not charged again.
    expect(billingOf("POST", "/chat/completions/chatcmpl-1")).toBe("free");
    expect(billingOf("POST", "/responses/resp_1/cancel")).toBe("free");
    expect(billingOf("POST", "/files")).toBe("free");
  });
});
