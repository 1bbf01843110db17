import { describe, expect, it } from "vitest";
import {
  PRICE_TABLE,
  type Price,
  parseFallbackPrice,
  parseModelPrices,
  priceFor,
  TABLE_FALLBACK_PRICE,
} from "./prices";

/** A price whose audio and image rates are its text rates. */
const text = (input: number, cachedInput: number, output: number): Price => ({
  input,
  cachedInput,
  output,
  audioInput: input,
  imageInput: input,
  audioOutput: output,
  imageOutput: output,
});

describe("the price table", () => {
  it("prices every current model the proxy knows, in USD per million tokens", () => {
    for (const model of [
      "gpt-5",
      "gpt-5-mini",
      "gpt-5-nano",
      "gpt-4.1",
      "gpt-4.1-mini",
      "gpt-4.1-nano",
      "gpt-4o",
      "gpt-4o-mini",
      "o1",
      "o3",
      "o3-mini",
      "o4-mini",
      "gpt-3.5-turbo",
      "text-embedding-3-small",
      "text-embedding-3-large",
      "text-embedding-ada-002",
    ]) {
      const price = priceFor(model, PRICE_TABLE);
      expect(price, model).not.toBeNull();
      expect(price?.cachedInput, model).toBeLessThanOrEqual(price?.input ?? 0);
    }
    expect(priceFor("gpt-4o-mini", PRICE_TABLE)).toEqual(text(0.15, 0.075, 0.6));
  });

  it("prices image and audio tokens where the model bills them apart from text", () => {
    expect(priceFor("gpt-image-1", PRICE_TABLE)).toMatchObject({ input: 5, imageInput: 10, output: 40 });
    expect(priceFor("gpt-4o-transcribe", PRICE_TABLE)).toMatchObject({ input: 2.5, audioInput: 6, output: 10 });
    expect(priceFor("gpt-realtime", PRICE_TABLE)).toMatchObject({ audioInput: 32, audioOutput: 64 });
  });

  it("prices a dated snapshot as its base model", () => {
    expect(priceFor("gpt-4o-2024-08-06", PRICE_TABLE)).toEqual(PRICE_TABLE.get("gpt-4o"));
    expect(priceFor("gpt-4o-mini-2024-07-18", PRICE_TABLE)).toEqual(PRICE_TABLE.get("gpt-4o-mini"));
  });

  it("keeps a snapshot's own price when it has one", () => {
    expect(priceFor("gpt-4o-2024-05-13", PRICE_TABLE)).toEqual(text(5, 5, 15));
  });

  it("knows no price for unknown models, fine-tunes or old four-digit snapshots", () => {
    for (const model of ["my-model", "ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-3.5-turbo-0613", "GPT-4O", ""]) {
      expect(priceFor(model, PRICE_TABLE), model).toBeNull();
    }
  });
});

describe("parseModelPrices", () => {
  it("is the table when MODEL_PRICES is unset or empty", () => {
    for (const raw of [undefined, "", "  "]) {
      const { prices, errors } = parseModelPrices(raw);
      expect(errors).toEqual([]);
      expect([...prices]).toEqual([...PRICE_TABLE]);
    }
  });

  it("adds the operator's models and overrides the table's prices", () => {
    const { prices, errors } = parseModelPrices(
      JSON.stringify({
        "my-model": { input: 1, cached_input: 0.5, output: 2 },
        "gpt-4o": { input: 2, cached_input: 1, output: 8 },
        "free-model": { input: 0, output: 0 },
      }),
    );
    expect(errors).toEqual([]);
    expect(prices.get("my-model")).toEqual(text(1, 0.5, 2));
    expect(prices.get("gpt-4o")).toEqual(text(2, 1, 8));
    expect(prices.get("gpt-4o-mini")).toEqual(PRICE_TABLE.get("gpt-4o-mini"));
    // Snapshots follow the override.
    expect(priceFor("gpt-4o-2024-08-06", prices)).toEqual(text(2, 1, 8));
  });

  it("reads audio and image prices, which default to the text prices", () => {
    const { prices, errors } = parseModelPrices(
      '{"voice": {"input": 1, "output": 2, "audio_input": 10, "audio_output": 20, "image_input": 3, "image_output": 4}}',
    );
    expect(errors).toEqual([]);
    expect(prices.get("voice")).toEqual({
      input: 1,
      cachedInput: 1,
      output: 2,
      audioInput: 10,
      audioOutput: 20,
      imageInput: 3,
      imageOutput: 4,
    });
  });

  it("charges cached input as input when cached_input is left out", () => {
    const { prices } = parseModelPrices('{"my-model": {"input": 3, "output": 6}}');
    expect(prices.get("my-model")).toEqual(text(3, 3, 6));
  });

  it("reports every problem at once, by model, and leaves bad entries out", () => {
    const { prices, errors } = parseModelPrices(
      JSON.stringify({
        good: { input: 1, output: 2 },
        "no-output": { input: 1 },
        negative: { input: -1, cached_input: "0.5", output: 2 },
        typo: { input: 1, ouput: 2 },
        scalar: 3,
        "": { input: 1, output: 1 },
        "gpt-4o": { input: Number.NaN, output: 1 },
      }),
    );
    expect(errors).toEqual([
      'MODEL_PRICES "no-output": output is missing',
      'MODEL_PRICES "negative": input must be a number of USD per million tokens, 0 or more (got -1); cached_input must be a number of USD per million tokens, 0 or more (got "0.5")',
      'MODEL_PRICES "typo": output is missing; ouput is not a price field (use input, cached_input, output, audio_input, image_input, audio_output, image_output)',
      'MODEL_PRICES "scalar" must be an object like {"input": 1, "cached_input": 0.5, "output": 2}',
      'MODEL_PRICES has a model name that is empty or has surrounding spaces ("")',
      'MODEL_PRICES "gpt-4o": input must be a number of USD per million tokens, 0 or more (got null)',
    ]);
    expect(prices.get("good")).toEqual(text(1, 1, 2));
    expect(prices.has("no-output")).toBe(false);
    expect(prices.get("gpt-4o")).toEqual(PRICE_TABLE.get("gpt-4o"));
  });

  it.each([
    ["not JSON", "{my-model: 1}", 'MODEL_PRICES must be JSON, e.g. {"my-model": {"input": 1, "output": 2}}'],
    ["an array", "[]", "MODEL_PRICES must be a JSON object of model names to prices"],
    ["null", "null", "MODEL_PRICES must be a JSON object of model names to prices"],
  ])("refuses %s as a whole", (_, raw, error) => {
    const { prices, errors } = parseModelPrices(raw);
    expect(errors).toEqual([error]);
    expect(prices.size).toBe(PRICE_TABLE.size);
  });
});

describe("the fallback price", () => {
  it("is, by default, the table's dearest rate of each kind: no priced model costs more", () => {
    for (const [model, price] of PRICE_TABLE) {
      for (const key of Object.keys(price) as (keyof Price)[]) {
        expect(price[key], `${model} ${key}`).toBeLessThanOrEqual(TABLE_FALLBACK_PRICE[key]);
      }
    }
    expect(parseFallbackPrice(undefined)).toEqual({ price: TABLE_FALLBACK_PRICE, errors: [] });
  });

  it("takes FALLBACK_PRICE as one MODEL_PRICES entry, and names it when it is wrong", () => {
    expect(parseFallbackPrice('{"input": 20, "output": 80}').price).toMatchObject({
      input: 20,
      output: 80,
      audioInput: 20,
    });
    expect(parseFallbackPrice("20").errors[0]).toMatch(/^FALLBACK_PRICE/);
    expect(parseFallbackPrice("{").errors[0]).toMatch(/^FALLBACK_PRICE must be JSON/);
  });

  it("prices whisper-1's minutes as 1,000 audio tokens at $6 per million: $0.006 a minute", () => {
    expect(PRICE_TABLE.get("whisper-1")).toMatchObject({ audioInput: 6 });
  });
});
