import { describe, expect, it } from "vitest";
import { PRICE_TABLE, type Price, parseModelPrices } from "../config";
import { costUsd } from "./cost";
import { plainUsage, type Usage } from "./usage";

const price = (model: string): Price => {
  const found = PRICE_TABLE.get(model);
  if (found === undefined) throw new Error(`no price for ${model}`);
  return found;
};
const usage = (fields: Partial<Usage>): Usage => ({ ...plainUsage(0, 0), ...fields });

describe("costUsd", () => {
  it("charges uncached input, cached input and output at the model's prices, per million tokens", () => {
    // gpt-4o-mini: 0.15 input, 0.075 cached input, 0.6 output.
    const cost = costUsd(price("gpt-4o-mini"), usage({ promptTokens: 1000, completionTokens: 200, cachedTokens: 400 }));
    expect(cost).toBeCloseTo((600 * 0.15 + 400 * 0.075 + 200 * 0.6) / 1e6, 15);
  });

  it("charges a whole million tokens at the list price", () => {
    expect(costUsd(price("gpt-4.1"), plainUsage(1_000_000, 1_000_000))).toBe(10);
    const cached = usage({ promptTokens: 1_000_000, completionTokens: 1_000_000, cachedTokens: 1_000_000 });
    expect(costUsd(price("gpt-5"), cached)).toBe(10.125);
  });

  it("prices an operator's model", () => {
    const { prices } = parseModelPrices('{"my-model": {"input": 1, "cached_input": 0.5, "output": 2}}');
    const mine = prices.get("my-model");
    expect(mine).toBeDefined();
    if (mine === undefined) return;
    const used = usage({ promptTokens: 3_000_000, completionTokens: 1_000_000, cachedTokens: 1_000_000 });
    expect(costUsd(mine, used)).toBe(2 + 0.5 + 2);
  });

  it("never counts more cached tokens than prompt tokens", () => {
    const cost = costUsd(price("gpt-4o"), usage({ promptTokens: 100, cachedTokens: 500 }));
    expect(cost).toBeCloseTo((100 * 1.25) / 1e6, 15);
  });

  it("charges gpt-image-1's text input, image input and image output at their own prices", () => {
    // 50 text + 300 image input tokens, 6,100 image output tokens: 50 × 5 + 300 × 10 + 6100 × 40 per million.
    const used = usage({ promptTokens: 350, imageInputTokens: 300, completionTokens: 6100, imageOutputTokens: 6100 });
    expect(costUsd(price("gpt-image-1"), used)).toBeCloseTo((50 * 5 + 300 * 10 + 6100 * 40) / 1e6, 12);
  });

  it("charges a transcription's audio input at the audio price and its text at the text prices", () => {
    const used = usage({ promptTokens: 1020, audioInputTokens: 1000, completionTokens: 200 });
    expect(costUsd(price("gpt-4o-transcribe"), used)).toBeCloseTo((20 * 2.5 + 1000 * 6 + 200 * 10) / 1e6, 12);
  });

  it("charges Realtime audio output at the audio output price, and cached audio at the cached price", () => {
    const used = usage({
      promptTokens: 1000,
      audioInputTokens: 800,
      cachedTokens: 500,
      completionTokens: 300,
      audioOutputTokens: 250,
    });
    // 200 text input, all cached; 300 more cached come from the audio: 500 × 0.4, 500 audio × 32,
    // 50 text output × 16, 250 audio output × 64.
    const expected = (500 * 0.4 + 500 * 32 + 50 * 16 + 250 * 64) / 1e6;
    expect(costUsd(price("gpt-realtime"), used)).toBeCloseTo(expected, 12);
  });
});
