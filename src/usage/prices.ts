import { isRecord } from "./usage";
/** A model's list price in USD per million tokens. */
export type Price = {
  input: number;
  /** Input tokens served from the prompt cache; equal to `input` for models without a cache discount. */
  cachedInput: number;
  output: number;
};

/** The token counts a cost is computed from (structurally a subset of the proxy's `Usage`). */
export type TokenCounts = {
  promptTokens: number;
  completionTokens: number;
  /** The part of `promptTokens` served from the prompt cache. */
  cachedTokens: number;
};

/**
 * OpenAI's published list prices (standard tier, text tokens), USD per million tokens, as of
 * August 2025. A dated snapshot (`gpt-4o-2024-08-06`) costs what its base model costs unless it
 * has its own entry here. Operators add or correct models with `MODEL_PRICES`.
 */
export const PRICE_TABLE: ReadonlyMap<string, Price> = new Map<string, Price>([
  ["gpt-5", { input: 1.25, cachedInput: 0.125, output: 10 }],
  ["gpt-5-mini", { input: 0.25, cachedInput: 0.025, output: 2 }],
  ["gpt-5-nano", { input: 0.05, cachedInput: 0.005, output: 0.4 }],
  ["gpt-4.1", { input: 2, cachedInput: 0.5, output: 8 }],
  ["gpt-4.1-mini", { input: 0.4, cachedInput: 0.1, output: 1.6 }],
  ["gpt-4.1-nano", { input: 0.1, cachedInput: 0.025, output: 0.4 }],
  ["gpt-4o", { input: 2.5, cachedInput: 1.25, output: 10 }],
  // The first gpt-4o snapshot kept its launch price and has no cache discount.
  ["gpt-4o-2024-05-13", { input: 5, cachedInput: 5, output: 15 }],
  ["gpt-4o-mini", { input: 0.15, cachedInput: 0.075, output: 0.6 }],
  ["o1", { input: 15, cachedInput: 7.5, output: 60 }],
  ["o3", { input: 2, cachedInput: 0.5, output: 8 }],
  ["o3-mini", { input: 1.1, cachedInput: 0.55, output: 4.4 }],
  ["o4-mini", { input: 1.1, cachedInput: 0.275, output: 4.4 }],
  ["gpt-3.5-turbo", { input: 0.5, cachedInput: 0.5, output: 1.5 }],
  ["text-embedding-3-small", { input: 0.02, cachedInput: 0.02, output: 0 }],
  ["text-embedding-3-large", { input: 0.13, cachedInput: 0.13, output: 0 }],
  ["text-embedding-ada-002", { input: 0.1, cachedInput: 0.1, output: 0 }],
]);

/** `gpt-4o-2024-08-06` → `gpt-4o`. Only full dates: older `-0613`-style snapshots were priced differently. */
const DATED_SNAPSHOT = /^(.+)-\d{4}-\d{2}-\d{2}$/;

const FIELDS = { input: "input", cached_input: "cachedInput", output: "output" } as const;

/**
 * Parses the operator's `MODEL_PRICES` (JSON: model → USD per million tokens) and merges it over
 * `PRICE_TABLE`, reporting every problem at once. `cached_input` defaults to `input` (no cache
 * discount). An entry with a problem is left out, so the table's price (if any) stays.
 *
 * @example
 * const { prices, errors } = parseModelPrices('{"my-model": {"input": 1, "cached_input": 0.5, "output": 2}}');
 * // prices.get("my-model") → { input: 1, cachedInput: 0.5, output: 2 }; errors → []
 */
export function parseModelPrices(raw: string | undefined): { prices: ReadonlyMap<string, Price>; errors: string[] } {
  const prices = new Map(PRICE_TABLE);
  const errors: string[] = [];
  if (raw === undefined || raw.trim() === "") return { prices, errors };

  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { prices, errors: ['MODEL_PRICES must be JSON, e.g. {"my-model": {"input": 1, "output": 2}}'] };
  }
  if (!isRecord(parsed)) {
    return { prices, errors: ["MODEL_PRICES must be a JSON object of model names to prices"] };
  }

  for (const [model, entry] of Object.entries(parsed)) {
    const at = `MODEL_PRICES "${model}"`;
    if (model.trim() === "" || model !== model.trim()) {
      errors.push(`MODEL_PRICES has a model name that is empty or has surrounding spaces ("${model}")`);
      continue;
    }
    if (!isRecord(entry)) {
      errors.push(`${at} must be an object like {"input": 1, "cached_input": 0.5, "output": 2}`);
      continue;
    }
    const problems: string[] = [];
    const price: Partial<Price> = {};
    for (const [field, key] of Object.entries(FIELDS)) {
      const value = entry[field];
      if (value === undefined) {
        if (field !== "cached_input") problems.push(`${field} is missing`);
      } else if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
        problems.push(`${field} must be a number of USD per million tokens, 0 or more (got ${JSON.stringify(value)})`);
      } else {
        price[key] = value;
      }
    }
    for (const field of Object.keys(entry)) {
      if (!Object.hasOwn(FIELDS, field))
        problems.push(`${field} is not a price field (use input, cached_input, output)`);
    }
    if (problems.length > 0 || price.input === undefined || price.output === undefined) {
      errors.push(`${at}: ${problems.join("; ")}`);
      continue;
    }
    prices.set(model, { input: price.input, cachedInput: price.cachedInput ?? price.input, output: price.output });
  }
  return { prices, errors };
}

/**
 * The price of `model`: its own entry, else its base model's when it is a dated snapshot, else null.
 *
 * @example
 * priceFor("gpt-4o-mini-2024-07-18", PRICE_TABLE); // the gpt-4o-mini price
 */
export function priceFor(model: string, prices: ReadonlyMap<string, Price>): Price | null {
  const own = prices.get(model);
  if (own !== undefined) return own;
  const base = DATED_SNAPSHOT.exec(model)?.[1];
  return base === undefined ? null : (prices.get(base) ?? null);
}

/**
 * The estimated cost in USD of one request: uncached input, cached input and output tokens at the
 * model's prices (reasoning tokens are part of `completionTokens` and billed as output). Null for a
 * model without a known price, never a guess.
 *
 * @example
 * costUsd("gpt-4o-mini", { promptTokens: 1000, completionTokens: 200, cachedTokens: 400 }, PRICE_TABLE);
 * // (600 × 0.15 + 400 × 0.075 + 200 × 0.6) / 1e6 = 0.00024
 */
export function costUsd(model: string | null, usage: TokenCounts, prices: ReadonlyMap<string, Price>): number | null {
  const price = model === null ? null : priceFor(model, prices);
  if (price === null) return null;
  const cached = Math.min(Math.max(usage.cachedTokens, 0), usage.promptTokens);
  const uncached = usage.promptTokens - cached;
  return (uncached * price.input + cached * price.cachedInput + usage.completionTokens * price.output) / 1_000_000;
}
