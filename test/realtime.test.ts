import { once } from "node:events";
import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type DevProxy, startWranglerDev } from "../scripts/lib/wrangler-dev";
import { REALTIME_USAGE } from "../tools/fake-openai/realtime";
import { clientRow, proxyWithFake } from "./support/proxy";

const KEY = "sk-realtime-e2e-upstream-key-6f5e4d3c2b1a";
const ADMIN = "admin-token-for-the-realtime-e2e-test";
const KEYS = {
  server: "pk_rt_server_0123456789abcdef",
  browser: "pk_rt_browser_0123456789abcde",
  budget: "pk_rt_budget_0123456789abcdef",
  idle: "pk_rt_idle_0123456789abcdefgh",
} as const;
const TOKENS_PER_ANSWER = REALTIME_USAGE.total_tokens;
// Long enough that the handshake of a loaded machine stays well within half of it.
const SESSION_OUTLIVES_MS = 8000;

const env = proxyWithFake(
  (upstream) => ({
    OPENAI_BASE_URL: upstream,
    OPENAI_API_KEY: KEY,
    ADMIN_TOKEN: ADMIN,
    PROXY_KEYS: Object.entries(KEYS)
      .map(([name, key]) => `${name}:${key}`)
      .join(","),
    // A session reserves one answer's output (4 096) and keeps that much ahead of what it spent:
    // after two answers, the third's reservation does not fit.
    PROXY_KEY_LIMITS: `budget:tokens_per_day=${4096 + 2 * TOKENS_PER_ANSWER + TOKENS_PER_ANSWER / 2}`,
    ALLOWED_ORIGINS: "https://app.example.com",
    // Bounds the handshake only: a session outlives it (see "stays open past UPSTREAM_TIMEOUT_MS").
    UPSTREAM_TIMEOUT_MS: String(SESSION_OUTLIVES_MS / 2),
  }),
  [KEY, ADMIN, ...Object.values(KEYS)],
);

/** A WebSocket to the proxy's Realtime endpoint, with what it receives. */
async function connect(options: { protocols?: string[]; headers?: Record<string, string> }) {
  const url = `${env.proxy.url.replace(/^http/, "ws")}/v1/realtime?model=gpt-realtime`;
  const socket = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {} });
  const events: Array<{ type: string }> = [];
  socket.on("message", (data) => events.push(JSON.parse(data.toString()) as { type: string }));
  const closed = once(socket, "close").then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
  await once(socket, "open");
  /** Resolves once `count` events of `type` have arrived. */
  const until = async (type: string, count = 1) => {
    while (events.filter((e) => e.type === type).length < count) await once(socket, "message");
  };
  return { socket, events, until, closed };
}

describe("the Realtime API over WebSocket, through wrangler dev", () => {
  it("stays open past UPSTREAM_TIMEOUT_MS, which bounds only the handshake", async () => {
    const client = await connect({ protocols: ["realtime"], headers: { authorization: `Bearer ${KEYS.idle}` } });
    await client.until("session.created");
    // Idle for longer than the timeout: the one wait here is time itself passing.
    await new Promise((next) => setTimeout(next, SESSION_OUTLIVES_MS));
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    client.socket.send(JSON.stringify({ type: "response.create" }));
    await client.until("response.done");
    client.socket.close(1000, "done");
    expect((await client.closed).code).toBe(1000);
  });

  it("relays a server's session with the operator's key, and records what it spent", async () => {
    const client = await connect({ protocols: ["realtime"], headers: { authorization: `Bearer ${KEYS.server}` } });
    expect(client.socket.protocol).toBe("realtime");
    await client.until("session.created");
    client.socket.send(JSON.stringify({ type: "response.create" }));
    await client.until("response.done");
    expect(client.events.filter((e) => e.type === "response.output_audio_transcript.delta").length).toBeGreaterThan(0);
    client.socket.close(1000, "done");
    await client.closed;
    const session = env.fake.sessions.at(-1);
    expect(session?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(session?.received.map((m) => JSON.parse(m).type)).toEqual(["response.create"]);
    expect(await clientRow(env.proxy, ADMIN, "server")).toMatchObject({
      requests: 1,
      prompt_tokens: REALTIME_USAGE.input_tokens,
      completion_tokens: REALTIME_USAGE.output_tokens,
    });
  });

  it("takes a browser's credential from its subprotocol and never sends it upstream", async () => {
    const client = await connect({
      protocols: ["realtime", `openai-insecure-api-key.${KEYS.browser}`],
      headers: { origin: "https://app.example.com" },
    });
    expect(client.socket.protocol).toBe("realtime");
    await client.until("session.created");
    client.socket.close(1000);
    await client.closed;
    const session = env.fake.sessions.at(-1);
    expect(session?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(JSON.stringify(session?.headers)).not.toContain(KEYS.browser);
  });

  it("refuses an upgrade without a credential, or from an origin the allowlist leaves out", async () => {
    const sessions = env.fake.sessions.length;
    const url = `${env.proxy.url.replace(/^http/, "ws")}/v1/realtime?model=gpt-realtime`;
    for (const headers of [{}, { authorization: `Bearer ${KEYS.server}`, origin: "https://evil.test" }]) {
      const socket = new WebSocket(url, ["realtime"], { headers });
      socket.on("error", () => {});
      const [, response] = (await once(socket, "unexpected-response")) as [unknown, { statusCode: number }];
      expect([401, 403]).toContain(response.statusCode);
      socket.terminate();
    }
    expect(env.fake.sessions).toHaveLength(sessions);
  });

  it("closes the session with a clear reason once the client's budget is spent", async () => {
    const client = await connect({ protocols: ["realtime"], headers: { authorization: `Bearer ${KEYS.budget}` } });
    await client.until("session.created");
    for (let answer = 1; answer <= 2; answer++) {
      client.socket.send(JSON.stringify({ type: "response.create" }));
      await client.until("response.done", answer);
    }
    client.socket.send(JSON.stringify({ type: "response.create" }));
    const { code, reason } = await client.closed;
    expect(code).toBe(1008);
    expect(reason).toContain("budget");
    expect(await clientRow(env.proxy, ADMIN, "budget")).toMatchObject({ total_tokens: 3 * TOKENS_PER_ANSWER });
  });

  it("refuses to mint a client secret that would spend past the proxy, while a budget applies", async () => {
    const response = await fetch(`${env.proxy.url}/v1/realtime/client_secrets`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEYS.budget}`, "content-type": "application/json" },
      body: JSON.stringify({ session: { type: "realtime", model: "gpt-realtime" } }),
    });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain("directly");
  });
});

describe("the official SDK's Realtime client, by baseURL only", () => {
  let secure: DevProxy;

  beforeAll(async () => {
    // The SDK always opens wss://, so this proxy serves https with wrangler dev's own certificate.
    secure = await startWranglerDev({ OPENAI_BASE_URL: env.fake.url, OPENAI_API_KEY: KEY }, { https: true });
  });
  afterAll(async () => {
    await secure?.stop();
    expect(secure?.output() ?? "").not.toContain(KEY);
  });

  it("opens a session, asks for an answer and gets it", async () => {
    const client = new OpenAI({ baseURL: `${secure.url}/v1`, apiKey: "sk-client-placeholder-0123456789" });
    const rt = new OpenAIRealtimeWS({ model: "gpt-realtime", options: { rejectUnauthorized: false } }, client);
    await once(rt.socket, "open");
    const done = new Promise<{ usage?: unknown }>((resolve) =>
      rt.on("response.done", (event) => resolve(event.response)),
    );
    rt.send({ type: "response.create" });
    expect((await done).usage).toEqual(REALTIME_USAGE);
    rt.close();
    expect(env.fake.sessions.at(-1)?.headers.authorization).toBe(`Bearer ${KEY}`);
  });
});
