/**
 * Real client SDKs from Node through a real `wrangler dev`, with only their base URL changed: the Vercel AI SDK
 * (`ai` + `@ai-sdk/openai`, both its chat-completions and its Responses flavour) and LangChain's `ChatOpenAI`.
 * Upstream is the project's fake OpenAI, so replies, usage and stream timing are known in advance.
 */
import { createOpenAI, type OpenAIProvider } from "@ai-sdk/openai";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, jsonSchema, type LanguageModel, streamText, tool } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevProxy, startWranglerDev } from "../scripts/lib/wrangler-dev";
import { type FakeOpenAI, type RecordedRequest, startFakeOpenAI } from "../tools/fake-openai/server";

const KEY = "sk-e2e-client-sdks-fake-key-5a4b";
/** What the clients send as their own key: the proxy drops it and sends KEY upstream. */
const PLACEHOLDER = "sk-client-side-placeholder";
/** Slows the fake's stream down so that "incremental" means something: one SSE event every 30 ms. */
const SLOW_STREAM = { "x-fake-chunk-gap-ms": "30" };

let fake: FakeOpenAI;
let proxy: DevProxy;
let openai: OpenAIProvider;

/** The upstream request whose last user message was `prompt` (each test uses its own prompt). */
function upstreamFor(prompt: string): RecordedRequest | undefined {
  return fake.requests.find((r) => JSON.stringify(r.json ?? null).includes(JSON.stringify(prompt)));
}

/** Where the fake stands now with the request for `prompt`: has it arrived, has the fake finished answering it? */
function upstreamState(prompt: string): { at: number; seen: boolean; finishedAt?: number } {
  const upstream = upstreamFor(prompt);
  return { at: Date.now(), seen: upstream !== undefined, finishedAt: upstream?.finishedAt };
}

beforeAll(async () => {
  fake = await startFakeOpenAI();
  // A rate limit well above what the suite sends: limits have tests of their own.
  proxy = await startWranglerDev({ OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: KEY, RATE_LIMIT_RPM: "1000" });
  openai = createOpenAI({ baseURL: `${proxy.url}/v1`, apiKey: PLACEHOLDER });
});

afterAll(async () => {
  await proxy?.stop();
  await fake?.close();
  expect(proxy?.output() ?? "").not.toContain(KEY);
});

/** Both flavours of the AI SDK's OpenAI provider, with the upstream path each one must use. */
const flavours: { name: string; model: () => LanguageModel; path: string }[] = [
  { name: "chat: openai.chat(model)", model: () => openai.chat("gpt-4o-mini"), path: "/v1/chat/completions" },
  // In @ai-sdk/openai 3, `openai(model)` is the Responses API.
  { name: "responses: openai(model)", model: () => openai("gpt-4o-mini"), path: "/v1/responses" },
];

describe("the Vercel AI SDK (ai + @ai-sdk/openai) through the proxy, by baseURL only", () => {
  it.each(flavours)("generateText, $name", async ({ model, path, name }) => {
    const prompt = `generate ${name}`;
    const result = await generateText({ model: model(), prompt, maxRetries: 0 });
    expect(result.text).toBe(`Hello! You said: ${prompt}`);
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    expect(result.usage.outputTokens).toBeGreaterThan(0);
    const upstream = upstreamFor(prompt);
    expect(upstream?.path).toBe(path);
    expect(upstream?.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it.each(flavours)("streamText delivers text as it arrives, then usage, $name", async ({ model, path, name }) => {
    const prompt = `stream ${name} to me`;
    const result = streamText({ model: model(), prompt, maxRetries: 0, headers: SLOW_STREAM });
    const deltas: string[] = [];
    /** What the fake had recorded when the first words reached the client. */
    let atFirstDelta: ReturnType<typeof upstreamState> | undefined;
    for await (const part of result.fullStream) {
      if (part.type === "error") throw part.error;
      if (part.type !== "text-delta" || part.text === "") continue;
      atFirstDelta ??= upstreamState(prompt);
      deltas.push(part.text);
    }
    expect(deltas.join("")).toBe(`Hello! You said: ${prompt}`);
    expect(deltas.length).toBeGreaterThan(1);
    // The first words were in the client's hands while the fake was still sending the rest.
    expect(atFirstDelta).toMatchObject({ seen: true, finishedAt: undefined });
    const upstream = upstreamFor(prompt);
    expect(upstream?.path).toBe(path);
    expect(upstream?.finishedAt).toBeGreaterThan(atFirstDelta?.at ?? Number.POSITIVE_INFINITY);
    const usage = await result.totalUsage;
    expect(usage.inputTokens).toBeGreaterThan(0);
    expect(usage.outputTokens).toBeGreaterThan(0);
    if (path === "/v1/chat/completions") {
      // The provider asks for the usage chunk itself.
      expect(upstream?.json).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    }
  });

  it("streams a tool call whose arguments arrive in pieces", async () => {
    const prompt = "What is the weather in Paris?";
    const result = streamText({
      model: openai.chat("gpt-4o-mini"),
      prompt,
      maxRetries: 0,
      headers: SLOW_STREAM,
      tools: {
        getWeather: tool({
          description: "The current weather at a place.",
          inputSchema: jsonSchema<{ location: string }>({
            type: "object",
            properties: { location: { type: "string" } },
            required: ["location"],
            additionalProperties: false,
          }),
        }),
      },
    });
    const inputDeltas: string[] = [];
    const calls: { toolName: string; input: unknown }[] = [];
    let started: string | undefined;
    for await (const part of result.fullStream) {
      if (part.type === "error") throw part.error;
      if (part.type === "tool-input-start") started = part.toolName;
      if (part.type === "tool-input-delta") inputDeltas.push(part.delta);
      if (part.type === "tool-call") calls.push({ toolName: part.toolName, input: part.input });
    }
    expect(started).toBe("getWeather");
    expect(inputDeltas.length).toBeGreaterThanOrEqual(3);
    expect(JSON.parse(inputDeltas.join(""))).toEqual({ location: "Paris" });
    expect(calls).toEqual([{ toolName: "getWeather", input: { location: "Paris" } }]);
    expect(await result.finishReason).toBe("tool-calls");
    expect(upstreamFor(prompt)?.json).toMatchObject({ tools: [{ function: { name: "getWeather" } }] });
  });
});

describe("LangChain's ChatOpenAI through the proxy, by baseURL only", () => {
  const chat = (defaultHeaders?: Record<string, string>) =>
    new ChatOpenAI({
      model: "gpt-4o-mini",
      apiKey: PLACEHOLDER,
      maxRetries: 0,
      configuration: { baseURL: `${proxy.url}/v1`, defaultHeaders },
    });

  it("invoke returns the reply", async () => {
    const prompt = "langchain invoke";
    const message = await chat().invoke(prompt);
    expect(message.text).toBe(`Hello! You said: ${prompt}`);
    expect(message.usage_metadata?.output_tokens).toBeGreaterThan(0);
    const upstream = upstreamFor(prompt);
    expect(upstream?.path).toBe("/v1/chat/completions");
    expect(upstream?.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it("stream yields the reply in several chunks, as they arrive", async () => {
    const prompt = "langchain stream";
    const pieces: string[] = [];
    let atFirstChunk: ReturnType<typeof upstreamState> | undefined;
    // LangChain's streaming path ignores per-call `options.headers`, so the slow stream is a client default.
    for await (const chunk of await chat(SLOW_STREAM).stream(prompt)) {
      if (chunk.text === "") continue;
      atFirstChunk ??= upstreamState(prompt);
      pieces.push(chunk.text);
    }
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(`Hello! You said: ${prompt}`);
    // The first words were in the client's hands while the fake was still sending the rest.
    expect(atFirstChunk).toMatchObject({ seen: true, finishedAt: undefined });
    expect(upstreamFor(prompt)?.json).toMatchObject({ stream: true });
  });
});
