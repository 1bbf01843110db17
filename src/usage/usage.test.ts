import { describe, expect, it } from "vitest";
import { plainUsage, readUsage, usageFromBody } from "./usage";

describe("usageFromBody", () => {
  it("reads a chat completion's usage with its cached and reasoning details", () => {
    const body = {
      id: "chatcmpl-1",
      object: "chat.completion",
      choices: [{ index: 0, message: { role: "assistant", content: "Hi" }, finish_reason: "stop" }],
      usage: {
        prompt_tokens: 1200,
        completion_tokens: 300,
        total_tokens: 1500,
        prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 256, audio_tokens: 0, accepted_prediction_tokens: 0 },
      },
    };
    expect(usageFromBody(body)).toMatchObject({
      promptTokens: 1200,
      completionTokens: 300,
      totalTokens: 1500,
      cachedTokens: 1024,
      reasoningTokens: 256,
    });
  });

  it("reads a legacy text completion's usage, missing details counting 0", () => {
    const body = {
      object: "text_completion",
      choices: [],
      usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
    };
    expect(usageFromBody(body)).toMatchObject({
      promptTokens: 5,
      completionTokens: 7,
      totalTokens: 12,
      cachedTokens: 0,
      reasoningTokens: 0,
    });
  });

  it("reads an embeddings response, which has no completion tokens", () => {
    const body = {
      object: "list",
      data: [],
      model: "text-embedding-3-small",
      usage: { prompt_tokens: 8, total_tokens: 8 },
    };
    expect(usageFromBody(body)).toMatchObject({
      promptTokens: 8,
      completionTokens: 0,
      totalTokens: 8,
      cachedTokens: 0,
      reasoningTokens: 0,
    });
  });

  it("reads a Responses API response's input and output tokens and their details", () => {
    const body = {
      id: "resp_1",
      object: "response",
      status: "completed",
      usage: {
        input_tokens: 36,
        input_tokens_details: { cached_tokens: 12 },
        output_tokens: 87,
        output_tokens_details: { reasoning_tokens: 64 },
        total_tokens: 123,
      },
    };
    expect(usageFromBody(body)).toMatchObject({
      promptTokens: 36,
      completionTokens: 87,
      totalTokens: 123,
      cachedTokens: 12,
      reasoningTokens: 64,
    });
  });

  it("counts missing or malformed details as 0 and sums a missing total", () => {
    expect(
      usageFromBody({ usage: { prompt_tokens: 3, completion_tokens: 4, prompt_tokens_details: null } }),
    ).toMatchObject({
      promptTokens: 3,
      completionTokens: 4,
      totalTokens: 7,
      cachedTokens: 0,
      reasoningTokens: 0,
    });
    expect(
      usageFromBody({
        usage: {
          input_tokens: 2,
          output_tokens: 5,
          input_tokens_details: { cached_tokens: "x" },
          output_tokens_details: [],
        },
      }),
    ).toMatchObject({ promptTokens: 2, completionTokens: 5, totalTokens: 7, cachedTokens: 0, reasoningTokens: 0 });
  });

  it("gives null for bodies without usable usage, and never throws", () => {
    const hostile = {
      get usage(): never {
        throw new Error("boom");
      },
    };
    for (const body of [
      null,
      undefined,
      "usage",
      42,
      [],
      {},
      { usage: null },
      { usage: [] },
      { usage: "12" },
      { usage: {} },
      { usage: { prompt_tokens: "12", total_tokens: 12 } },
      { usage: { prompt_tokens: -1, completion_tokens: 2 } },
      { usage: { prompt_tokens: 1.5, completion_tokens: 2 } },
      { usage: { input_tokens: null, output_tokens: 3 } },
      hostile,
    ]) {
      expect(usageFromBody(body)).toBeNull();
    }
  });

  it("reads every detail of a chat completion with audio, the rest counting 0", () => {
    const body = {
      usage: {
        prompt_tokens: 300,
        completion_tokens: 120,
        total_tokens: 420,
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 200 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 100 },
      },
    };
    expect(usageFromBody(body)).toEqual({
      promptTokens: 300,
      completionTokens: 120,
      totalTokens: 420,
      cachedTokens: 0,
      reasoningTokens: 0,
      audioInputTokens: 200,
      imageInputTokens: 0,
      audioOutputTokens: 100,
      imageOutputTokens: 0,
    });
  });

  it("reads an image generation's text and image input tokens (gpt-image-1)", () => {
    const body = {
      created: 1713833628,
      data: [{ b64_json: "..." }],
      usage: {
        total_tokens: 6150,
        input_tokens: 50,
        output_tokens: 6100,
        input_tokens_details: { text_tokens: 40, image_tokens: 10 },
      },
    };
    expect(usageFromBody(body)).toMatchObject({
      promptTokens: 50,
      completionTokens: 6100,
      totalTokens: 6150,
      imageInputTokens: 10,
      audioInputTokens: 0,
    });
  });

  it("reads a transcription's audio input tokens from input_token_details (gpt-4o-transcribe)", () => {
    const body = {
      text: "Hello",
      usage: {
        type: "tokens",
        input_tokens: 1020,
        input_token_details: { text_tokens: 20, audio_tokens: 1000 },
        output_tokens: 200,
        total_tokens: 1220,
      },
    };
    expect(usageFromBody(body)).toMatchObject({ promptTokens: 1020, completionTokens: 200, audioInputTokens: 1000 });
  });

  it("reads a transcription billed by duration (whisper-1) as audio tokens, 1,000 a minute", () => {
    expect(usageFromBody({ text: "Hi", usage: { type: "duration", seconds: 9 } })).toEqual({
      ...plainUsage(150, 0),
      audioInputTokens: 150,
    });
    expect(usageFromBody({ text: "Hi", usage: { type: "duration", seconds: 0.5 } })?.promptTokens).toBe(9);
    expect(usageFromBody({ text: "Hi", usage: { type: "duration", seconds: -1 } })).toBeNull();
    expect(usageFromBody({ text: "Hi", usage: { type: "duration" } })).toBeNull();
  });

  it("reads a Realtime response.done usage, cached audio included", () => {
    const usage = {
      total_tokens: 1300,
      input_tokens: 1000,
      output_tokens: 300,
      input_token_details: { text_tokens: 200, audio_tokens: 800, cached_tokens: 500, image_tokens: 0 },
      output_token_details: { text_tokens: 50, audio_tokens: 250 },
    };
    expect(readUsage(usage)).toMatchObject({
      promptTokens: 1000,
      completionTokens: 300,
      cachedTokens: 500,
      audioInputTokens: 800,
      audioOutputTokens: 250,
    });
  });

  it("never lets a detail exceed the total it is part of", () => {
    const usage = readUsage({ prompt_tokens: 10, completion_tokens: 5, prompt_tokens_details: { cached_tokens: 99 } });
    expect(usage?.cachedTokens).toBe(10);
  });
});
