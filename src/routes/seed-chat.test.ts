import { describe, expect, it } from "vitest";
import { call, controllableSse, json, mockUpstream, openaiJson, postJson, proxyRequest, text } from "../testing";

const MESSAGES = [{ role: "user", content: "Hello, how are you?" }];

async function sentBody(payload: unknown, vars: Record<string, string> = {}) {
  const upstream = mockUpstream(() => openaiJson({ choices: [{ message: { content: "fine" } }] }));
  const { response } = await call(postJson("/", payload), vars);
  expect(response.status).toBe(200);
  expect(upstream[0]?.url).toBe("https://api.openai.com/v1/chat/completions");
  return upstream[0]?.json();
}

describe("POST / defaults", () => {
  it("fills model, temperature and max_tokens only where the client left them out", async () => {
    expect(await sentBody({ messages: MESSAGES })).toEqual({
      model: "gpt-3.5-turbo",
      messages: MESSAGES,
      temperature: 0.7,
      max_tokens: 1000,
    });
  });

  it("keeps every field the client set, including other parameters", async () => {
    const request = { model: "gpt-4o", messages: MESSAGES, temperature: 0, max_tokens: 5, top_p: 0.9, stream: false };
    expect(await sentBody(request)).toEqual(request);
  });

  it("takes the defaults from configuration", async () => {
    expect(
      await sentBody(
        { messages: MESSAGES },
        { DEFAULT_MODEL: "gpt-4o-mini", DEFAULT_TEMPERATURE: "1", DEFAULT_MAX_TOKENS: "50" },
      ),
    ).toEqual({ model: "gpt-4o-mini", messages: MESSAGES, temperature: 1, max_tokens: 50 });
  });

  it.each(["o1-mini", "o3", "o4-mini", "gpt-5", "gpt-5-mini"])(
    "never adds temperature or max_tokens for %s",
    async (model) => {
      expect(await sentBody({ model, messages: MESSAGES })).toEqual({ model, messages: MESSAGES });
    },
  );

  it("does not add max_tokens when the client set max_completion_tokens", async () => {
    expect(await sentBody({ messages: MESSAGES, max_completion_tokens: 10 })).toEqual({
      model: "gpt-3.5-turbo",
      messages: MESSAGES,
      temperature: 0.7,
      max_completion_tokens: 10,
    });
  });
});

describe("POST / validation", () => {
  it.each([
    ["malformed JSON", '{"messages": [', "not valid JSON"],
    ["an empty body", "", "empty"],
    ["a JSON array", "[]", "JSON object"],
    ["no messages", "{}", "messages"],
    ["empty messages", '{"messages":[]}', "messages"],
    ["messages not an array", '{"messages":"hi"}', "messages"],
  ])("refuses %s with 400 in the seed's shape", async (_, body, message) => {
    const upstream = mockUpstream(() => openaiJson({}));
    const { response } = await call(postJson("/", body));
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ error: "Bad Request", message: expect.stringContaining(message) });
    expect(upstream).toHaveLength(0);
  });

  it("refuses a content type other than JSON with 415", async () => {
    const { response } = await call(
      proxyRequest("/", {
        method: "POST",
        body: "messages=hi",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }),
    );
    expect(response.status).toBe(415);
    expect(await json(response)).toMatchObject({
      error: "Unsupported Media Type",
      message: expect.stringContaining("application/json"),
    });
  });

  it("accepts a JSON content type with a charset", async () => {
    mockUpstream(() => openaiJson({}));
    const { response } = await call(
      postJson("/", { messages: MESSAGES }, { "content-type": "application/json; charset=utf-8" }),
    );
    expect(response.status).toBe(200);
  });
});

describe("POST / as the seed README uses it", () => {
  it("answers the plain fetch example with the completion", async () => {
    mockUpstream(() => openaiJson({ choices: [{ message: { role: "assistant", content: "I am fine." } }] }));
    const { response } = await call(
      postJson("/", { model: "gpt-3.5-turbo", messages: MESSAGES, temperature: 0.7, max_tokens: 1000 }),
    );
    const data = await json<{ choices: { message: { content: string } }[] }>(response);
    expect(data.choices[0]?.message.content).toBe("I am fine.");
  });

  it("streams the streaming example through, chunk by chunk", async () => {
    const sse = controllableSse();
    const upstream = mockUpstream(() => sse.response);
    const { response } = await call(postJson("/", { model: "gpt-3.5-turbo", messages: MESSAGES, stream: true }));
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    expect(await upstream[0]?.json()).toMatchObject({ stream: true });
    const chunks = [
      'data: {"choices":[{"delta":{"content":"I am"}}]}\n\n',
      'data: {"choices":[{"delta":{"content":" fine"}}]}\n\n',
      "data: [DONE]\n\n",
    ];
    for (const chunk of chunks) sse.send(chunk);
    sse.end();
    expect(await text(response)).toBe(chunks.join(""));
  });

  it("serves the original README's naive reader whole lines even when upstream's reads split them", async () => {
    const events = ["I", " am", " fine", " 你好 👋"].map(
      (content) => `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`,
    );
    const bytes = new TextEncoder().encode(`${events.join("")}data: [DONE]\n\n`);
    for (const cut of [7, 23, 40, 61, bytes.byteLength - 3]) {
      const sse = controllableSse();
      mockUpstream(() => sse.response);
      const { response } = await call(postJson("/", { messages: MESSAGES, stream: true }));
      sse.send(bytes.slice(0, cut));
      sse.send(bytes.slice(cut));
      sse.end();
      // The original README's loop: decode each read on its own, split it on newlines.
      const reader = response.body?.getReader();
      let text = "";
      while (reader) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const line of new TextDecoder().decode(value).split("\n")) {
          if (line.startsWith("data: ") && line !== "data: [DONE]")
            text += JSON.parse(line.slice(6)).choices[0]?.delta?.content;
        }
      }
      expect(text, `cut at ${cut}`).toBe("I am fine 你好 👋");
    }
  });

  it("passes upstream errors through in OpenAI's shape", async () => {
    mockUpstream(() =>
      openaiJson(
        { error: { message: "bad model", type: "invalid_request_error", param: "model", code: "model_not_found" } },
        404,
      ),
    );
    const { response } = await call(postJson("/", { model: "nope", messages: MESSAGES }));
    expect(response.status).toBe(404);
    expect(await json(response)).toMatchObject({ error: { code: "model_not_found" } });
  });
});
