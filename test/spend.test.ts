import OpenAI, { toFile } from "openai";
import { describe, expect, it } from "vitest";
import { clientRow, proxyWithFake, refusal } from "./support/proxy";

const KEY = "sk-spend-e2e-upstream-key-4d5e6f7a8b9c";
const ADMIN = "admin-token-for-the-spend-e2e-test";
/** One client key per scenario, so that no scenario spends another's budget. */
const KEYS = {
  refusals: "pk_refusals_0123456789abcdef",
  bigCap: "pk_bigcap_0123456789abcdef0",
  smallBudget: "pk_small_0123456789abcdef01",
  images: "pk_images_0123456789abcdef0",
  audio: "pk_audio_0123456789abcdef012",
} as const;

const env = proxyWithFake(
  (upstream) => ({
    OPENAI_BASE_URL: upstream,
    OPENAI_API_KEY: KEY,
    ADMIN_TOKEN: ADMIN,
    PROXY_KEYS: Object.entries(KEYS)
      .map(([name, key]) => `${name}:${key}`)
      .join(","),
    PROXY_KEY_LIMITS: "smallBudget:tokens_per_day=5000",
    DAILY_TOKEN_BUDGET: "10000",
    ALLOWED_MODELS: "gpt-4o-mini,gpt-image-1,gpt-4o-transcribe",
    ALLOWED_ORIGINS: "https://app.example.com",
  }),
  [KEY, ADMIN, ...Object.values(KEYS)],
);

const sdk = (apiKey: string) => new OpenAI({ baseURL: `${env.proxy.url}/v1`, apiKey, maxRetries: 0 });
const chat = (client: OpenAI, model: string, max_tokens: number) =>
  client.chat.completions.create({ model, max_tokens, messages: [{ role: "user", content: "hello" }] });

describe("what requests spend, through wrangler dev", () => {
  it("charges nothing for refused requests: an allowed one still fits the budget after three refusals", async () => {
    const client = sdk(KEYS.refusals);
    for (let i = 0; i < 3; i++) {
      const error = await refusal(chat(client, "gpt-4o", 4000));
      expect(error.status).toBe(403);
      expect(error.code).toBe("model_not_allowed");
    }
    const allowed = await chat(client, "gpt-4o-mini", 4000);
    expect(allowed.choices[0]?.message.content).toBe("Hello! You said: hello");
    const row = await clientRow(env.proxy, ADMIN, "refusals", 4);
    expect(row).toMatchObject({ requests: 4, total_tokens: allowed.usage?.total_tokens });
  });

  it("reserves a request's own max_tokens with no cap invented, and refuses one that does not fit with 429", async () => {
    const fits = await chat(sdk(KEYS.bigCap), "gpt-4o-mini", 8000);
    expect(fits.choices).toHaveLength(1);
    const upstream = env.fake.requests.at(-1)?.json as Record<string, unknown>;
    expect(upstream.max_tokens).toBe(8000);
    const error = await refusal(chat(sdk(KEYS.smallBudget), "gpt-4o-mini", 8000));
    expect(error.status).toBe(429);
    expect(error.code).toBe("insufficient_quota");
    expect(error.message).toContain("has 5000 of its 5000 daily tokens left");
  });

  it("counts image tokens, and refuses the next image once they spent the budget", async () => {
    const client = sdk(KEYS.images);
    const generate = () =>
      client.images.generate({ model: "gpt-image-1", prompt: "a red fox", size: "1024x1024", quality: "high" });
    const first = await generate();
    const second = await generate();
    expect(first.usage?.output_tokens).toBe(4160);
    expect(second.data).toHaveLength(1);
    const error = await refusal(generate());
    expect(error.status).toBe(429);
    expect(error.code).toBe("insufficient_quota");
    const row = await clientRow(env.proxy, ADMIN, "images", 3);
    const spent = 2 * (first.usage?.total_tokens ?? 0);
    expect(row).toMatchObject({ requests: 3, total_tokens: spent });
    // gpt-image-1: text input at $5, image output at $40 per million tokens.
    const input = first.usage?.input_tokens ?? 0;
    expect(row?.cost_usd).toBeCloseTo((2 * (input * 5 + 4160 * 40)) / 1e6, 9);
  });

  it("counts a transcription's audio tokens", async () => {
    const client = sdk(KEYS.audio);
    const file = await toFile(new Uint8Array(5000), "speech.mp3", { type: "audio/mpeg" });
    const transcription = await client.audio.transcriptions.create({ model: "gpt-4o-transcribe", file });
    expect(transcription.text).toBe("transcribed 5000 bytes");
    const row = await clientRow(env.proxy, ADMIN, "audio", 1);
    // The fake bills 10 text and 50 audio input tokens for 5 000 bytes, and 3 output tokens.
    expect(row).toMatchObject({ prompt_tokens: 60, completion_tokens: 3 });
    // gpt-4o-transcribe: text input $2.50, audio input $6, output $10 per million tokens.
    expect(row?.cost_usd).toBeCloseTo((10 * 2.5 + 50 * 6 + 3 * 10) / 1e6, 9);
  });

  it.each(["/nope", "/v2/models"])("answers GET %s with a 404 that a page can read", async (path) => {
    const response = await fetch(`${env.proxy.url}${path}`, { headers: { origin: "https://app.example.com" } });
    expect(response.status).toBe(404);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(await response.json()).toMatchObject({ error: "Not Found" });
  });
});
