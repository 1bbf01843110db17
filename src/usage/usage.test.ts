import { describe, expect, it } from "vitest";
import { usageFromBody } from "./usage";

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
    expect(usageFromBody(body)).toEqual({
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
    expect(usageFromBody(body)).toEqual({
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
    expect(usageFromBody(body)).toEqual({
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
    expect(usageFromBody(body)).toEqual({
      promptTokens: 36,
      completionTokens: 87,
      totalTokens: 123,
      cachedTokens: 12,
      reasoningTokens: 64,
    });
  });

  it("counts missing or malformed details as 0 and sums a missing total", () => {
    expect(usageFromBody({ usage: { prompt_tokens: 3, completion_tokens: 4, prompt_tokens_details: null } })).toEqual({
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
    ).toEqual({ promptTokens: 2, completionTokens: 5, totalTokens: 7, cachedTokens: 0, reasoningTokens: 0 });
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
      { usage: { type: "duration", seconds: 3 } },
      hostile,
    ]) {
      expect(usageFromBody(body)).toBeNull();
    }
  });
});
