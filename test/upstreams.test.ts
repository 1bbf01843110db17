/**
 * Several upstreams behind one endpoint, through a real `wrangler dev`: an OpenAI-shaped fake and an Azure-shaped
 * fake (deployment paths, `api-version`, `api-key`), driven by the official SDK and the Vercel AI SDK with only
 * their base URL and model changed. Routing by model and alias, weights, key rotation and rest, failover on each
 * trigger, none after the first byte, and a refused key taken out.
 */
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type DevProxy, startWranglerDev } from "../scripts/lib/wrangler-dev";
import { type FakeOpenAI, startFakeOpenAI } from "../tools/fake-openai/server";

const KEYS = {
  COMPAT_KEY_1: "sk-compat-one-5f4e3d2c1b0a",
  COMPAT_KEY_2: "sk-compat-two-0a1b2c3d4e5f",
  AZURE_KEY: "azure-key-9a8b7c6d5e4f3a2b",
  SPARE_KEY: "sk-spare-0f1e2d3c4b5a6978",
  LIMITED_KEY: "sk-limited-1a2b3c4d5e6f7081",
  REFUSED_KEY: "sk-refused-1122334455667788",
} as const;

let compat: FakeOpenAI;
let azure: FakeOpenAI;
let spare: FakeOpenAI;
let proxy: DevProxy;
let sdk: OpenAI;

beforeAll(async () => {
  compat = await startFakeOpenAI();
  azure = await startFakeOpenAI({ azure: true });
  // Answers 429 to one of its keys and 401 to another: the pool rests one and takes the other out.
  spare = await startFakeOpenAI({ keyFaults: { [KEYS.LIMITED_KEY]: "fault-429", [KEYS.REFUSED_KEY]: "fault-401" } });
  const upstreams = [
    {
      name: "compat",
      base_url: compat.url,
      keys: ["COMPAT_KEY_1", "COMPAT_KEY_2"],
      models: ["deepseek-*", "shared-*"],
      weight: 3,
    },
    {
      name: "azure",
      kind: "azure",
      base_url: azure.url.replace(/\/v1$/, ""),
      keys: ["AZURE_KEY"],
      api_version: "2024-10-21",
      deployments: { "gpt-4o-mini": "mini-prod", "text-embedding-3-small": "embed" },
      models: ["gpt-4o-mini", "text-embedding-3-small", "shared-*"],
      weight: 1,
    },
    { name: "pool", base_url: spare.url, keys: ["LIMITED_KEY", "REFUSED_KEY", "SPARE_KEY"], models: ["pool-*"] },
    // Nothing listens there: a connection error, for failover.
    { name: "dead", base_url: "http://127.0.0.1:9/v1", keys: ["SPARE_KEY"], models: ["failover-*"], weight: 1000000 },
    { name: "backup", base_url: compat.url, keys: ["SPARE_KEY"], models: ["failover-*"], weight: 1 },
  ];
  proxy = await startWranglerDev({
    ...KEYS,
    UPSTREAMS: JSON.stringify(upstreams),
    MODEL_ALIASES: JSON.stringify({ fast: "gpt-4o-mini", chat: "deepseek-chat" }),
    RATE_LIMIT_RPM: "10000",
    MAX_CONCURRENT_STREAMS: "0",
    DAILY_SPEND_LIMIT_USD: "",
  });
  sdk = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([compat?.close(), azure?.close(), spare?.close()]);
  for (const key of Object.values(KEYS)) expect(proxy?.output() ?? "").not.toContain(key);
});

beforeEach(() => {
  for (const fake of [compat, azure, spare]) fake.reset();
});

describe("one endpoint, an OpenAI-compatible upstream and Azure OpenAI side by side", () => {
  it("routes chat, streams and embeddings by model to each kind, with each kind's URL and key", async () => {
    const deep = await sdk.chat.completions.create({
      model: "deepseek-chat",
      messages: [{ role: "user", content: "one" }],
    });
    expect(deep.choices[0]?.message.content).toBe("Hello! You said: one");
    expect(compat.requests.at(-1)).toMatchObject({ path: "/v1/chat/completions" });
    expect(compat.requests.at(-1)?.headers.authorization).toMatch(/^Bearer sk-compat-(one|two)-/);

    const mini = await sdk.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "two" }],
    });
    expect(mini.choices[0]?.message.content).toBe("Hello! You said: two");
    const sent = azure.requests.at(-1);
    expect(sent?.path).toBe("/openai/deployments/mini-prod/chat/completions?api-version=2024-10-21");
    expect(sent?.headers["api-key"]).toBe(KEYS.AZURE_KEY);
    expect(sent?.headers.authorization).toBeUndefined();

    const stream = await sdk.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "streamed" }],
      stream: true,
    });
    let streamed = "";
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
    expect(streamed).toBe("Hello! You said: streamed");

    const embedding = await sdk.embeddings.create({ model: "text-embedding-3-small", input: "x" });
    expect(embedding.data[0]?.embedding.length).toBeGreaterThan(0);
    expect(azure.requests.at(-1)?.path).toBe("/openai/deployments/embed/embeddings?api-version=2024-10-21");
  });

  it("lists the models of every upstream and the aliases", async () => {
    const ids = [];
    for await (const model of sdk.models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining(["gpt-4o-mini", "text-embedding-3-small", "fast", "chat"]));
  });

  it("works with the Vercel AI SDK through each kind, and through an alias", async () => {
    const openai = createOpenAI({ baseURL: `${proxy.url}/v1`, apiKey: "unused" });
    const viaAzure = await generateText({ model: openai.chat("fast"), prompt: "alias", maxRetries: 0 });
    expect(viaAzure.text).toBe("Hello! You said: alias");
    expect(azure.requests.at(-1)?.json).toMatchObject({ model: "gpt-4o-mini" });
    const viaCompat = streamText({ model: openai.chat("chat"), prompt: "streamed alias", maxRetries: 0 });
    expect(await viaCompat.text).toBe("Hello! You said: streamed alias");
    expect(compat.requests.at(-1)?.json).toMatchObject({ model: "deepseek-chat" });
  });

  it("answers 404 model_not_found for a model no upstream serves", async () => {
    const error = await sdk.chat.completions.create({ model: "claude-9", messages: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
  });

  it("spreads a model both serve by weight, 3 to 1", async () => {
    for (let i = 0; i < 120; i++) {
      await sdk.chat.completions.create({ model: "shared-model", messages: [{ role: "user", content: "w" }] });
    }
    const share = compat.requests.length / (compat.requests.length + azure.requests.length);
    expect(share).toBeGreaterThan(0.6);
    expect(share).toBeLessThan(0.9);
    // And the compat upstream's two keys in turn.
    const keys = new Set(compat.requests.map((r) => r.headers.authorization));
    expect(keys.size).toBe(2);
  });
});

describe("failover before the first byte", () => {
  it("passes over an upstream that cannot be reached: the client sees one clean answer", async () => {
    const reply = await sdk.chat.completions.create({
      model: "failover-model",
      messages: [{ role: "user", content: "x" }],
    });
    expect(reply.choices[0]?.message.content).toBe("Hello! You said: x");
    expect(compat.requests).toHaveLength(1);
  });

  it.each(["fault-503", "fault-429", "fault-region"])("moves %s on to another upstream", async (fault) => {
    // Shared by compat (weight 3) and azure: when compat's next answer fails, azure answers.
    compat.failNext(fault, 2);
    const before = azure.requests.length;
    for (let i = 0; i < 4; i++) {
      const reply = await sdk.chat.completions.create({
        model: "shared-model",
        messages: [{ role: "user", content: "f" }],
      });
      expect(reply.choices[0]?.message.content).toBe("Hello! You said: f");
    }
    expect(azure.requests.length).toBeGreaterThan(before);
  });

  it("rests a key answered 429 and takes out one answered 401; /health says the upstream is degraded", async () => {
    for (let i = 0; i < 6; i++) {
      const reply = await sdk.chat.completions.create({
        model: "pool-model",
        messages: [{ role: "user", content: "k" }],
      });
      expect(reply.choices[0]?.message.content).toBe("Hello! You said: k");
    }
    const used = spare.requests.map((r) => r.headers.authorization?.slice("Bearer ".length));
    // Each refused key was tried once, then left alone; the spare answered the rest.
    expect(used.filter((key) => key === KEYS.LIMITED_KEY)).toHaveLength(1);
    expect(used.filter((key) => key === KEYS.REFUSED_KEY)).toHaveLength(1);
    expect(used.filter((key) => key === KEYS.SPARE_KEY).length).toBeGreaterThanOrEqual(6);
    const health = await (await fetch(`${proxy.url}/health`)).json();
    expect(health).toMatchObject({ status: "degraded" });
    expect(health.upstreams).toContainEqual({ name: "pool", status: "degraded" });
    expect(JSON.stringify(health)).not.toMatch(/sk-/);
  });

  it("never moves a stream once its first byte reached the client", async () => {
    compat.failNext("fault-reset", 1);
    const stream = await sdk.chat.completions.create({
      model: "deepseek-chat",
      messages: [{ role: "user", content: "cut me" }],
      stream: true,
    });
    let received = "";
    const error = await (async () => {
      for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? "";
    })().catch((e: unknown) => e);
    expect(received.length).toBeGreaterThan(0);
    expect(error).toBeInstanceOf(Error);
    expect(compat.requests).toHaveLength(1);
    expect(azure.requests).toHaveLength(0);
  });
});
