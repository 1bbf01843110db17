import { describe, expect, it } from "vitest";
import { costUsd, PRICE_TABLE, parseModelPrices, priceFor } from "./prices";

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
    expect(priceFor("gpt-4o-mini", PRICE_TABLE)).toEqual({ input: 0.15, cachedInput: 0.075, output: 0.6 });
  });

  it("prices a dated snapshot as its base model", () => {
    expect(priceFor("gpt-4o-2024-08-06", PRICE_TABLE)).toEqual(PRICE_TABLE.get("gpt-4o"));
    expect(priceFor("gpt-4o-mini-2024-07-18", PRICE_TABLE)).toEqual(PRICE_TABLE.get("gpt-4o-mini"));
  });

  it("keeps a snapshot's own price when it has one", () => {
    expect(priceFor("gpt-4o-2024-05-13", PRICE_TABLE)).toEqual({ input: 5, cachedInput: 5, output: 15 });
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
    expect(prices.get("my-model")).toEqual({ input: 1, cachedInput: 0.5, output: 2 });
    expect(prices.get("gpt-4o")).toEqual({ input: 2, cachedInput: 1, output: 8 });
    expect(prices.get("gpt-4o-mini")).toEqual(PRICE_TABLE.get("gpt-4o-mini"));
    // Snapshots follow the override.
    expect(priceFor("gpt-4o-2024-08-06", prices)).toEqual({ input: 2, cachedInput: 1, output: 8 });
  });

  it("charges cached input as input when cached_input is left out", () => {
    const { prices } = parseModelPrices('{"my-model": {"input": 3, "output": 6}}');
    expect(prices.get("my-model")).toEqual({ input: 3, cachedInput: 3, output: 6 });
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
      'MODEL_PRICES "typo": output is missing; ouput is not a price field (use input, cached_input, output)',
      'MODEL_PRICES "scalar" must be an object like {"input": 1, "cached_input": 0.5, "output": 2}',
      'MODEL_PRICES has a model name that is empty or has surrounding spaces ("")',
      'MODEL_PRICES "gpt-4o": input must be a number of USD per million tokens, 0 or more (got null)',
    ]);
    expect(prices.get("good")).toEqual({ input: 1, cachedInput: 1, output: 2 });
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

describe("costUsd", () => {
  it("charges uncached input, cached input and output at the model's prices, per million tokens", () => {
    // gpt-4o-mini: 0.15 input, 0.075 cached input, 0.6 output.
    const cost = costUsd("gpt-4o-mini", { promptTokens: 1000, completionTokens: 200, cachedTokens: 400 }, PRICE_TABLE);
    expect(cost).toBeCloseTo((600 * 0.15 + 400 * 0.075 + 200 * 0.6) / 1e6, 15);
  });

  it("charges a whole million tokens at the list price", () => {
    const usage = { promptTokens: 1_000_000, completionTokens: 1_000_000, cachedTokens: 0 };
    expect(costUsd("gpt-4.1", usage, PRICE_TABLE)).toBe(10);
    expect(costUsd("gpt-5", { ...usage, cachedTokens: 1_000_000 }, PRICE_TABLE)).toBe(10.125);
  });

  it("prices a dated snapshot and an operator's model", () => {
    const usage = { promptTokens: 2_000_000, completionTokens: 0, cachedTokens: 0 };
    expect(costUsd("gpt-4o-2024-08-06", usage, PRICE_TABLE)).toBe(5);
    const { prices } = parseModelPrices('{"my-model": {"input": 1, "cached_input": 0.5, "output": 2}}');
    expect(
      costUsd("my-model", { promptTokens: 3_000_000, completionTokens: 1_000_000, cachedTokens: 1_000_000 }, prices),
    ).toBe(2 + 0.5 + 2);
  });

  it("is null for an unknown model or none, never a guess", () => {
    const usage = { promptTokens: 10, completionTokens: 10, cachedTokens: 0 };
    expect(costUsd("my-model", usage, PRICE_TABLE)).toBeNull();
    expect(costUsd(null, usage, PRICE_TABLE)).toBeNull();
  });

  it("never counts more cached tokens than prompt tokens", () => {
    const cost = costUsd("gpt-4o", { promptTokens: 100, completionTokens: 0, cachedTokens: 500 }, PRICE_TABLE);
    expect(cost).toBeCloseTo((100 * 1.25) / 1e6, 15);
  });
});
