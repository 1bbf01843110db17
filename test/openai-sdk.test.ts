import OpenAI, { type APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevProxy, startWranglerDev } from "../scripts/lib/wrangler-dev";
import { proxyWithFake } from "./support/proxy";

const KEY = "sk-e2e-upstream-key-9f8e7d6c5b4a39281706";
let client: OpenAI;
/** Every response header and non-stream body the clients saw, checked for the key at the end. */
const seen: string[] = [];

/** `fetch` for the SDK that records what comes back. */
const recordingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  seen.push(JSON.stringify([...response.headers]));
  if (!response.headers.get("content-type")?.includes("event-stream")) seen.push(await response.clone().text());
  return response;
};

function sdk(options: { baseURL?: string; maxRetries?: number } = {}): OpenAI {
  // The SDK needs some apiKey; the proxy ignores it and never forwards it.
  return new OpenAI({
    baseURL: `${env.proxy.url}/v1`,
    apiKey: "sk-client-side-placeholder",
    maxRetries: 0,
    fetch: recordingFetch,
    ...options,
  });
}

const env = proxyWithFake(
  (upstream) => ({
    OPENAI_BASE_URL: upstream,
    OPENAI_API_KEY: KEY,
    // Well above what the suite sends: limits have tests of their own.
    RATE_LIMIT_RPM: "1000",
    UPSTREAM_TIMEOUT_MS: "1500",
    STREAM_IDLE_TIMEOUT_MS: "1500",
  }),
  [KEY],
);

beforeAll(() => {
  client = sdk();
});

afterAll(() => {
  expect(seen.filter((s) => s.includes(KEY))).toEqual([]);
});

describe("the official openai SDK through the proxy, by baseURL only", () => {
  it("creates a chat completion", async () => {
    const completion = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "ping" }],
    });
    expect(completion.choices[0]?.message.content).toBe("Hello! You said: ping");
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
    const upstream = env.fake.requests.at(-1);
    expect(upstream?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(upstream?.path).toBe("/v1/chat/completions");
  });

  it("streams a chat completion with usage", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "tell me a story" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      content += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(content).toBe("Hello! You said: tell me a story");
    expect(chunks).toBeGreaterThan(5);
    expect(usage?.completion_tokens).toBe(7);
  });

  it("creates embeddings, base64 by default", async () => {
    const result = await client.embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
    expect(result.data).toHaveLength(2);
    expect(result.data[0]?.embedding).toHaveLength(8);
    expect(env.fake.requests.at(-1)?.json).toMatchObject({ encoding_format: "base64" });
  });

  it("lists models", async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model.id);
    expect(models).toContain("gpt-4o-mini");
  });

  it("streams a Responses API reply", async () => {
    const stream = await client.responses.create({ model: "gpt-4o-mini", input: "hi there", stream: true });
    const types = new Set<string>();
    let text = "";
    for await (const event of stream) {
      types.add(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
    }
    expect(types.has("response.completed")).toBe(true);
    expect(text).toBe("Hello! You said: hi there");
  });

  it("uploads audio for transcription and gets binary speech back", async () => {
    const audio = new Uint8Array(3000).fill(7);
    const transcription = await client.audio.transcriptions.create({
      model: "whisper-1",
      file: new File([audio], "clip.mp3", { type: "audio/mpeg" }),
    });
    expect(transcription.text).toBe("transcribed 3000 bytes");
    const speech = await client.audio.speech.create({ model: "tts-1", voice: "alloy", input: "hello" });
    expect(speech.headers.get("content-type")).toBe("audio/mpeg");
    expect((await speech.arrayBuffer()).byteLength).toBeGreaterThan(1000);
  });
});

describe("errors reach the SDK as its own error classes", () => {
  it("400 → BadRequestError, not retried", async () => {
    env.fake.reset();
    const error = await sdk({ maxRetries: 2 })
      .chat.completions.create({ model: "fault-400", messages: [] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(env.fake.requests).toHaveLength(1);
  });

  it("404 → NotFoundError, not retried", async () => {
    env.fake.reset();
    const error = await sdk({ maxRetries: 2 })
      .models.retrieve("no-such-model")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as APIError).code).toBe("model_not_found");
    expect(env.fake.requests).toHaveLength(1);
  });

  it("429 → RateLimitError, with Retry-After and the request id", async () => {
    const error = await client.chat.completions
      .create({ model: "fault-429", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = error as APIError;
    expect(rateLimit.headers?.get("retry-after")).toBe("2");
    expect(rateLimit.requestID).toBe(env.fake.requests.at(-1)?.id);
  });

  it("429 is retried by the SDK after upstream's retry-after-ms", async () => {
    const retrying = sdk({ maxRetries: 1 });
    env.fake.reset();
    const error = await retrying.chat.completions
      .create({ model: "fault-429", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const [first, second] = env.fake.requests;
    expect(env.fake.requests).toHaveLength(2);
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(1900);
  });

  it("500 → InternalServerError after the SDK's own retry", async () => {
    const retrying = sdk({ maxRetries: 1 });
    env.fake.reset();
    const error = await retrying.chat.completions
      .create({ model: "fault-500", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(env.fake.requests.filter((r) => r.path === "/v1/chat/completions")).toHaveLength(2);
  });

  it("503 passes through with its body", async () => {
    const error = await client.chat.completions
      .create({ model: "fault-503", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as APIError).status).toBe(503);
    expect((error as APIError).message).toContain("overloaded");
  });

  it("a redirect from upstream is not followed: 502", async () => {
    env.fake.reset();
    const error = await client.chat.completions
      .create({ model: "fault-redirect", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect((error as APIError).status).toBe(502);
    expect((error as APIError).code).toBe("upstream_redirect");
    expect(env.fake.requests).toHaveLength(1);
  });
});

describe("faults mid-flight", () => {
  it("a slow first byte past UPSTREAM_TIMEOUT_MS gives 504", async () => {
    const error = await client.chat.completions
      .create(
        { model: "fault-slow-first-byte", messages: [{ role: "user", content: "x" }] },
        { headers: { "x-fake-delay-ms": "4000" } },
      )
      .catch((e: unknown) => e);
    expect((error as APIError).status).toBe(504);
  });

  it("a stream cut by a connection reset ends in an error, never a clean end", async () => {
    const stream = await client.chat.completions.create({
      model: "fault-reset",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    let chunks = 0;
    const consume = async () => {
      for await (const _ of stream) chunks++;
    };
    await expect(consume()).rejects.toThrow(/interrupted/);
    expect(chunks).toBeGreaterThan(0);
  });

  it("a stalled stream ends in an error once upstream has been silent too long", async () => {
    const stream = await client.chat.completions.create({
      model: "fault-stall",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    const consume = async () => {
      for await (const _ of stream);
    };
    await expect(consume()).rejects.toThrow(/sent nothing/);
  });

  it("a client that aborts mid-stream cancels the upstream request within a second", async () => {
    env.fake.reset();
    // A long, steady stream: locally a disconnect is noticed at the proxy's next write (see README).
    const stream = await client.chat.completions.create(
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }], stream: true },
      { headers: { "x-fake-chunks": "200", "x-fake-chunk-gap-ms": "50" } },
    );
    const upstream = await env.fake.waitForRequest((r) => r.path === "/v1/chat/completions");
    for await (const _ of stream) {
      stream.controller.abort();
      break;
    }
    const closed = await env.fake.waitForClose(upstream.id, 1000);
    expect(closed.clientClosedEarly).toBe(true);
  });
});

describe("the seed README's examples, unchanged", () => {
  it("sendMessage: a plain POST / answers with the completion", async () => {
    const response = await fetch(`${env.proxy.url}/`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: "gpt-3.5-turbo",
        messages: [{ role: "user", content: "Hello, how are you?" }],
        temperature: 0.7,
        max_tokens: 1000,
      }),
    });
    const data = (await response.json()) as { choices: { message: { content: string } }[] };
    expect(data.choices[0]?.message.content).toBe("Hello! You said: Hello, how are you?");
  });

  it("a streaming POST / delivers every chunk to the README's line-buffering reader", async () => {
    const response = await fetch(`${env.proxy.url}/`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "gpt-3.5-turbo", messages: [{ role: "user", content: "Hello" }], stream: true }),
    });
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let text = "";
    while (reader) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        text += JSON.parse(line.slice(6)).choices[0]?.delta?.content ?? "";
      }
    }
    expect(text).toBe("Hello! You said: Hello");
    expect(env.fake.requests.at(-1)?.json).toMatchObject({ stream: true, temperature: 0.7, max_tokens: 1000 });
  });
});

describe("an upstream that refuses the proxy's key", () => {
  let refused: DevProxy;
  beforeAll(async () => {
    refused = await startWranglerDev({ OPENAI_BASE_URL: env.fake.url, OPENAI_API_KEY: "sk-wrong" });
  });
  afterAll(async () => {
    await refused?.stop();
    expect(refused?.output() ?? "").not.toContain("sk-wrong");
  });

  it("gives the client a generic 502 that does not echo the key", async () => {
    env.fake.reset();
    const error = (await sdk({ baseURL: `${refused.url}/v1`, maxRetries: 2 })
      .models.list()
      .catch((e: unknown) => e)) as APIError;
    // The SDK is told not to retry: a refused key stays refused.
    expect(env.fake.requests).toHaveLength(1);
    expect(error.status).toBe(502);
    expect(JSON.stringify(error.error)).not.toContain("sk-wrong");
    expect(error.message).toContain("upstream refused the proxy's credentials");
  });
});
