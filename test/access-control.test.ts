import OpenAI, { type APIError } from "openai";
import { describe, expect, it } from "vitest";
import { mintToken } from "../src/middleware/client-auth/mint";
import { proxyWithFake } from "./support/proxy";

const KEY = "sk-access-e2e-upstream-key-1a2b3c4d5e6f";
const BACKEND_KEY = "pk_backend_9f8e7d6c5b4a3f2e1d0c";
const WEB_KEY = "pk_web_0a1b2c3d4e5f6a7b8c9d";
const JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256!";

const env = proxyWithFake(
  (upstream) => ({
    OPENAI_BASE_URL: upstream,
    OPENAI_API_KEY: KEY,
    PROXY_KEYS: `backend:${BACKEND_KEY},web:${WEB_KEY}`,
    PROXY_KEY_LIMITS: "web:rpm=3",
    PROXY_JWT_SECRET: JWT_SECRET,
    ALLOWED_MODELS: "gpt-4o-mini,gpt-4.1*",
  }),
  [KEY, BACKEND_KEY, WEB_KEY, JWT_SECRET],
);

const sdk = (apiKey: string) => new OpenAI({ baseURL: `${env.proxy.url}/v1`, apiKey, maxRetries: 0 });
const chat = (client: OpenAI, model = "gpt-4o-mini") =>
  client.chat.completions.create({ model, messages: [{ role: "user", content: "hello" }] });

describe("access control through wrangler dev", () => {
  it("says which mode it is in on /health", async () => {
    expect(await (await fetch(`${env.proxy.url}/health`)).json()).toEqual({
      status: "ok",
      auth: "keys+tokens",
      modes: ["keys", "tokens"],
    });
  });

  it("serves the official SDK with a client key as its apiKey, and sends the operator's key upstream", async () => {
    const completion = await chat(sdk(BACKEND_KEY));
    expect(completion.choices[0]?.message.content).toBe("Hello! You said: hello");
    expect(env.fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it("refuses an unknown key with 401 AuthenticationError, even with a forged Origin", async () => {
    env.fake.reset();
    const forged = new OpenAI({
      baseURL: `${env.proxy.url}/v1`,
      apiKey: "pk_guess_0000000000000000",
      maxRetries: 0,
      defaultHeaders: { origin: "https://app.example.com" },
    });
    const error = await chat(forged).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as APIError).code).toBe("invalid_api_key");
    expect(env.fake.requests).toHaveLength(0);
  });

  it("limits a key to its own rpm, with OpenAI's rate-limit headers", async () => {
    const web = sdk(WEB_KEY);
    const first = await web.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "1" }] })
      .withResponse();
    expect(first.response.headers.get("x-ratelimit-limit-requests")).toBe("3");
    expect(first.response.headers.get("x-ratelimit-remaining-requests")).toBe("2");
    await chat(web);
    await chat(web);
    const error = (await chat(web).catch((e: unknown) => e)) as APIError;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.code).toBe("rate_limit_exceeded");
    expect(Number(error.headers?.get("retry-after"))).toBeGreaterThan(0);
    expect(error.headers?.get("x-ratelimit-remaining-requests")).toBe("0");
  });

  it("refuses a model outside ALLOWED_MODELS with PermissionDeniedError", async () => {
    const error = (await chat(sdk(BACKEND_KEY), "gpt-4o").catch((e: unknown) => e)) as APIError;
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(error.code).toBe("model_not_allowed");
  });

  it("accepts a minted token and holds it to its models claim", async () => {
    const token = await mintToken({ secret: JWT_SECRET, sub: "alice", ttlSeconds: 60, models: ["gpt-4.1*"] });
    const client = sdk(token);
    expect((await chat(client, "gpt-4.1-mini")).choices[0]?.message.content).toBe("Hello! You said: hello");
    const error = (await chat(client, "gpt-4o-mini").catch((e: unknown) => e)) as APIError;
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it("refuses an expired token", async () => {
    const token = await mintToken({ secret: JWT_SECRET, sub: "alice", ttlSeconds: -60 });
    expect(await chat(sdk(token)).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
