import { isRecord } from "../lib/json";

/**
 * A model's list price in USD per million tokens. Text input and output always; audio and image
 * tokens where the model bills them differently (they default to the text price).
 */
export type Price = {
  input: number;
  /** Input tokens served from the prompt cache; equal to `input` for models without a cache discount. */
  cachedInput: number;
  output: number;
  audioInput: number;
  imageInput: number;
  audioOutput: number;
  imageOutput: number;
};

type PriceEntry = Pick<Price, "input" | "output"> & Partial<Price>;

/** A price with every modality filled in from the text prices. */
function price(entry: PriceEntry): Price {
  return {
    input: entry.input,
    cachedInput: entry.cachedInput ?? entry.input,
    output: entry.output,
    audioInput: entry.audioInput ?? entry.input,
    imageInput: entry.imageInput ?? entry.input,
    audioOutput: entry.audioOutput ?? entry.output,
    imageOutput: entry.imageOutput ?? entry.output,
  };
}

/**
 * OpenAI's list prices (standard tier), USD per million tokens, checked on 2026-11-30 against
 * OpenAI's model pages (developers.openai.com/api/docs/models) and pydantic/genai-prices
 * (`prices/providers/openai.yml`, 2026-08-21). A dated snapshot (`gpt-4o-2024-08-06`) costs what its
 * base model costs unless it has its own entry here. Operators add or correct models with
 * `MODEL_PRICES`; a model in neither is priced at `FALLBACK_PRICE`.
 *
 * Image models bill their output as image tokens, so their `output` is the image output price.
 * Long-context surcharges (over 272K input tokens on gpt-5.4 and later) are not modelled.
 */
export const PRICE_TABLE: ReadonlyMap<string, Price> = new Map<string, Price>(
  Object.entries({
    "gpt-5.5": { input: 5, cachedInput: 0.5, output: 30 },
    "gpt-5.4": { input: 2.5, cachedInput: 0.25, output: 15 },
    "gpt-5.2": { input: 1.75, cachedInput: 0.175, output: 14 },
    "gpt-5.1": { input: 1.25, cachedInput: 0.125, output: 10 },
    "gpt-5": { input: 1.25, cachedInput: 0.125, output: 10 },
    "gpt-5-mini": { input: 0.25, cachedInput: 0.025, output: 2 },
    "gpt-5-nano": { input: 0.05, cachedInput: 0.005, output: 0.4 },
    "gpt-4.1": { input: 2, cachedInput: 0.5, output: 8 },
    "gpt-4.1-mini": { input: 0.4, cachedInput: 0.1, output: 1.6 },
    "gpt-4.1-nano": { input: 0.1, cachedInput: 0.025, output: 0.4 },
    "gpt-4o": { input: 2.5, cachedInput: 1.25, output: 10 },
    // The first gpt-4o snapshot kept its launch price and has no cache discount.
    "gpt-4o-2024-05-13": { input: 5, output: 15 },
    "gpt-4o-mini": { input: 0.15, cachedInput: 0.075, output: 0.6 },
    o1: { input: 15, cachedInput: 7.5, output: 60 },
    "o1-mini": { input: 1.1, cachedInput: 0.55, output: 4.4 },
    o3: { input: 2, cachedInput: 0.5, output: 8 },
    "o3-mini": { input: 1.1, cachedInput: 0.55, output: 4.4 },
    "o4-mini": { input: 1.1, cachedInput: 0.275, output: 4.4 },
    "gpt-3.5-turbo": { input: 0.5, output: 1.5 },
    "text-embedding-3-small": { input: 0.02, output: 0 },
    "text-embedding-3-large": { input: 0.13, output: 0 },
    "text-embedding-ada-002": { input: 0.1, output: 0 },
    // Image generation: text and image input, image output.
    "gpt-image-1": { input: 5, cachedInput: 1.25, imageInput: 10, output: 40 },
    "gpt-image-1-mini": { input: 2, cachedInput: 0.2, imageInput: 2.5, output: 8 },
    "gpt-image-1.5": { input: 5, cachedInput: 1.25, imageInput: 8, output: 32 },
    // Speech to text and text to speech, billed by audio tokens.
    "gpt-4o-transcribe": { input: 2.5, audioInput: 6, output: 10 },
    "gpt-4o-mini-transcribe": { input: 1.25, audioInput: 3, output: 5 },
    "gpt-4o-mini-tts": { input: 0.6, output: 12 },
    // Billed by the minute ($0.006), counted as 1,000 audio tokens a minute (see `DURATION_TOKENS_PER_MINUTE`).
    "whisper-1": { input: 6, audioInput: 6, output: 0 },
    // Audio in chat completions and the Realtime API.
    "gpt-4o-audio-preview": { input: 2.5, audioInput: 40, output: 10, audioOutput: 80 },
    "gpt-audio": { input: 2.5, audioInput: 32, output: 10, audioOutput: 64 },
    "gpt-realtime": { input: 4, cachedInput: 0.4, audioInput: 32, imageInput: 5, output: 16, audioOutput: 64 },
    "gpt-realtime-mini": {
      input: 0.6,
      cachedInput: 0.06,
      audioInput: 10,
      imageInput: 0.8,
      output: 2.4,
      audioOutput: 20,
    },
    "gpt-4o-realtime-preview": { input: 5, cachedInput: 2.5, audioInput: 40, output: 20, audioOutput: 80 },
    "gpt-4o-mini-realtime-preview": { input: 0.6, cachedInput: 0.3, audioInput: 10, output: 2.4, audioOutput: 20 },
  } satisfies Record<string, PriceEntry>).map(([model, entry]) => [model, price(entry)]),
);

/** `gpt-4o-2024-08-06` → `gpt-4o`. Only full dates: older `-0613`-style snapshots were priced differently. */
const DATED_SNAPSHOT = /^(.+)-\d{4}-\d{2}-\d{2}$/;

/** `MODEL_PRICES` field → `Price` field. */
const FIELDS = {
  input: "input",
  cached_input: "cachedInput",
  output: "output",
  audio_input: "audioInput",
  image_input: "imageInput",
  audio_output: "audioOutput",
  image_output: "imageOutput",
} as const satisfies Record<string, keyof Price>;

/**
 * Parses the operator's `MODEL_PRICES` (JSON: model → USD per million tokens) and merges it over
 * `PRICE_TABLE`, reporting every problem at once. `input` and `output` are required;
 * `cached_input`, `audio_input` and `image_input` default to `input`, `audio_output` and
 * `image_output` to `output`. An entry with a problem is left out, so the table's price (if any) stays.
 *
 * @example
 * const { prices, errors } = parseModelPrices('{"my-model": {"input": 1, "cached_input": 0.5, "output": 2}}');
 * // prices.get("my-model") → { input: 1, cachedInput: 0.5, output: 2, audioInput: 1, … }; errors → []
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
    const parsedEntry = parsePrice(at, entry);
    if (typeof parsedEntry === "string") errors.push(parsedEntry);
    else prices.set(model, parsedEntry);
  }
  return { prices, errors };
}

/**
 * One price as `MODEL_PRICES` and `FALLBACK_PRICE` write it: an object of USD per million tokens,
 * `input` and `output` required, the other fields defaulting to them. The error, naming `at`, when
 * it is not one.
 *
 * @example
 * parsePrice("FALLBACK_PRICE", { input: 15, output: 60 }); // { input: 15, cachedInput: 15, output: 60, … }
 */
export function parsePrice(at: string, entry: unknown): Price | string {
  if (!isRecord(entry)) return `${at} must be an object like {"input": 1, "cached_input": 0.5, "output": 2}`;
  const problems: string[] = [];
  const fields: Partial<Price> = {};
  for (const [field, key] of Object.entries(FIELDS)) {
    const value = entry[field];
    if (value === undefined) {
      if (field === "input" || field === "output") problems.push(`${field} is missing`);
    } else if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      problems.push(`${field} must be a number of USD per million tokens, 0 or more (got ${JSON.stringify(value)})`);
    } else {
      fields[key] = value;
    }
  }
  for (const field of Object.keys(entry)) {
    if (!Object.hasOwn(FIELDS, field)) {
      problems.push(`${field} is not a price field (use ${Object.keys(FIELDS).join(", ")})`);
    }
  }
  if (problems.length > 0 || fields.input === undefined || fields.output === undefined) {
    return `${at}: ${problems.join("; ")}`;
  }
  return price({ ...fields, input: fields.input, output: fields.output });
}

/**
 * The price an unpriced model is charged at unless `FALLBACK_PRICE` says otherwise: the price
 * table's most expensive rate of each kind (text, cached, audio and image, in and out), so that a
 * model released after the table can be used at once and still cannot spend past a limit.
 */
export const TABLE_FALLBACK_PRICE: Price = Object.fromEntries(
  (Object.values(FIELDS) as (keyof Price)[]).map((key) => [
    key,
    Math.max(...[...PRICE_TABLE.values()].map((entry) => entry[key])),
  ]),
) as Price;

/**
 * Parses `FALLBACK_PRICE` (JSON like one `MODEL_PRICES` entry); unset, `TABLE_FALLBACK_PRICE`.
 *
 * @example
 * parseFallbackPrice('{"input": 20, "output": 80}').price.output; // 80
 */
export function parseFallbackPrice(raw: string | undefined): { price: Price; errors: string[] } {
  if (raw === undefined || raw.trim() === "") return { price: TABLE_FALLBACK_PRICE, errors: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { price: TABLE_FALLBACK_PRICE, errors: ['FALLBACK_PRICE must be JSON, e.g. {"input": 15, "output": 60}'] };
  }
  const result = parsePrice("FALLBACK_PRICE", parsed);
  return typeof result === "string" ? { price: TABLE_FALLBACK_PRICE, errors: [result] } : { price: result, errors: [] };
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
