import { request as httpRequest } from "node:http";
import OpenAI, { toFile } from "openai";
import { describe, expect, it } from "vitest";
import { proxyWithFake, refusal } from "./support/proxy";

const KEY = "sk-limits-e2e-upstream-key-0f1e2d3c4b5a";

const env = proxyWithFake(
  (upstream) => ({
    OPENAI_BASE_URL: upstream,
    OPENAI_API_KEY: KEY,
    RATE_LIMIT_RPM: "1000",
    UPSTREAM_TIMEOUT_MS: "1500",
  }),
  [KEY],
);

/** The SDK as users run it: its default retries on, unless a test turns them off. */
const sdk = (options: { maxRetries?: number; defaultHeaders?: Record<string, string> } = {}) =>
  new OpenAI({ baseURL: `${env.proxy.url}/v1`, apiKey: "unused", ...options });

/**
 * A POST sent as curl sends bodies over 1 MB: `Expect: 100-continue`, then the body once the server
 * answers 100 or, as curl does, after waiting a second for it (wrangler dev's local server sends none).
 */
function postExpectingContinue(
  path: string,
  body: Buffer,
  contentType: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, env.proxy.url);
    const request = httpRequest(url, {
      method: "POST",
      headers: { "content-type": contentType, "content-length": body.length, expect: "100-continue" },
    });
    let sent = false;
    const send = () => {
      if (sent) return;
      sent = true;
      request.end(body);
    };
    request.on("continue", send);
    // curl's --expect100-timeout, 1 s by default: the client's own rule, not a wait for the server.
    setTimeout(send, 1000);
    request.on("response", (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text }));
    });
    request.on("error", reject);
  });
}

describe("the whole API at its real limits, through wrangler dev", () => {
  it("answers a 1.5 MB JSON body sent with Expect: 100-continue, as curl sends it", async () => {
    const body = Buffer.from(
      JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `big ${"x".repeat(1_500_000)}` }] }),
    );
    const { status, text } = await postExpectingContinue("/v1/chat/completions", body, "application/json");
    expect(status).toBe(200);
    expect(JSON.parse(text).choices[0].message.content).toContain("Hello! You said: big");
    expect(env.fake.requests.at(-1)?.headers.expect).toBeUndefined();
  });

  it("answers a 2 MB multipart upload sent with Expect: 100-continue", async () => {
    const boundary = "----curl0123456789";
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n`),
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="a.mp3"\r\ncontent-type: audio/mpeg\r\n\r\n`,
      ),
      Buffer.alloc(2_000_000, 7),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const { status, text } = await postExpectingContinue(
      "/v1/audio/transcriptions",
      body,
      `multipart/form-data; boundary=${boundary}`,
    );
    expect(status).toBe(200);
    expect(JSON.parse(text).text).toBe("transcribed 2000000 bytes");
  });

  it("answers an interim 103 that the runtime hands over as upstream's answer with a clear 502, never a crash", async () => {
    const error = await refusal(
      sdk({ maxRetries: 0 }).chat.completions.create({
        model: "fault-early-hints",
        messages: [{ role: "user", content: "hint" }],
      }),
    );
    expect(error.status).toBe(502);
    expect(error.code).toBe("upstream_bad_response");
  });

  it("takes a 12.6 MB chat with one base64 image and a 20 MB audio upload by default", async () => {
    const image = `data:image/png;base64,${Buffer.alloc(9_450_000, 1).toString("base64")}`;
    expect(image.length).toBeGreaterThan(12_600_000);
    const completion = await sdk({ maxRetries: 0 }).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: image } }] }],
    });
    expect(completion.choices).toHaveLength(1);
    const file = await toFile(Buffer.alloc(20_000_000, 3), "talk.mp3", { type: "audio/mpeg" });
    const transcription = await sdk({ maxRetries: 0 }).audio.transcriptions.create({ model: "whisper-1", file });
    expect(transcription.text).toBe("transcribed 20000000 bytes");
  });

  it("tells the SDK not to retry a timeout: upstream may still be generating", async () => {
    const before = env.fake.requests.length;
    const error = await refusal(
      sdk().chat.completions.create(
        { model: "fault-slow-first-byte", messages: [{ role: "user", content: "think long" }] },
        { headers: { "x-fake-delay-ms": "3000" } },
      ),
    );
    expect(error.status).toBe(504);
    expect(error.headers?.get("x-should-retry")).toBe("false");
    // The SDK's default two retries were not used: one paid generation, not three.
    expect(env.fake.requests.length - before).toBe(1);
  });

  it("passes OpenAI's region block on with its code, a message naming the fix, and no retry", async () => {
    const before = env.fake.requests.length;
    const error = await refusal(sdk().chat.completions.create({ model: "fault-region", messages: [] }));
    expect(error.status).toBe(403);
    expect(error.code).toBe("unsupported_country_region_territory");
    expect(error.message).toContain("placement");
    expect(env.fake.requests.length - before).toBe(1);
  });

  it("hides only what can leak the key: a refused key is a generic 502", async () => {
    const error = await refusal(sdk({ maxRetries: 0 }).chat.completions.create({ model: "fault-401", messages: [] }));
    expect(error.status).toBe(502);
    expect(error.code).toBe("upstream_auth_failed");
    expect(JSON.stringify(error.error)).not.toContain(KEY.slice(-4));
  });

  it("gets a stream through an upstream that refuses stream_options, and stops adding it there", async () => {
    const strict = sdk({ maxRetries: 0, defaultHeaders: { "x-fake-strict": "stream_options" } });
    const before = env.fake.requests.length;
    for (let i = 0; i < 2; i++) {
      const stream = await strict.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "strict upstream" }],
        stream: true,
      });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
      expect(text).toBe("Hello! You said: strict upstream");
    }
    const sent = env.fake.requests.slice(before).map((r) => (r.json as { stream_options?: unknown }).stream_options);
    // The first request tried the field once; after that only the client's own request.
    expect(sent).toEqual([{ include_usage: true }, undefined, undefined]);
  });

  it("keeps upstream's own rate-limit headers on upstream's 429, not mixed with the proxy's", async () => {
    const response = await fetch(`${env.proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "fault-429", messages: [] }),
    });
    expect(response.status).toBe(429);
    expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(response.headers.get("x-ratelimit-limit-requests")).toBe("10000");
    expect(response.headers.get("retry-after")).toBe("2");
  });
});
