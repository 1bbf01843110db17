import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startStaticServer } from "../scripts/lib/static-server";
import { type DevProxy, ROOT, startWranglerDev } from "../scripts/lib/wrangler-dev";
import { mintToken } from "../src/middleware/client-auth/mint";
import { type FakeOpenAI, startFakeOpenAI } from "../tools/fake-openai/server";
import { type FakeTurnstile, startFakeTurnstile, TURNSTILE_TEST_KEYS } from "../tools/fake-turnstile/server";
import { browserAvailable, launchChromium, openaiBrowserBundle, RESULTS_DIR } from "./support/browser";

const KEY = "sk-browser-e2e-key-5a4b3c2d1e0f";

describe.runIf(browserAvailable())("the demo chat page in Chromium", () => {
  let fake: FakeOpenAI;
  let proxy: DevProxy;
  let allowed: { url: string; close: () => Promise<void> };
  let disallowed: { url: string; close: () => Promise<void> };
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    // Thirty pieces 40 ms apart: a reply takes over a second, so "before the end" is observable.
    fake = await startFakeOpenAI({ chunks: 30, chunkGapMs: 40 });
    const root = join(ROOT, "examples/chat");
    allowed = await startStaticServer({ root });
    disallowed = await startStaticServer({ root });
    proxy = await startWranglerDev({ OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: KEY, ALLOWED_ORIGINS: allowed.url });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await Promise.all([fake?.close(), allowed?.close(), disallowed?.close()]);
    expect(proxy?.output() ?? "").not.toContain(KEY);
  });

  beforeEach(async () => {
    fake.reset();
    page = await browser.newPage({ viewport: { width: 900, height: 640 } });
    // Shorter than the test's own timeout, so that a wait that never ends names itself.
    page.setDefaultTimeout(20_000);
    return () => page.close();
  });

  async function open(origin: string, proxyUrl = proxy.url, token?: string): Promise<void> {
    const query = `proxy=${encodeURIComponent(proxyUrl)}${token === undefined ? "" : `&token=${encodeURIComponent(token)}`}`;
    await page.goto(`${origin}/?${query}`);
    await page.waitForSelector("body[data-ready='true']");
  }

  async function send(prompt: string, model?: string): Promise<void> {
    if (model !== undefined) {
      await page.evaluate((m) => {
        const select = document.querySelector<HTMLSelectElement>("#model");
        select?.add(new Option(m, m));
        if (select) select.value = m;
      }, model);
    }
    await page.fill("#prompt", prompt);
    await page.click("#send");
  }

  const assistantText = () => page.textContent(".message.assistant .content");
  const firstWords = () =>
    page.waitForFunction(() => (document.querySelector(".message.assistant .content")?.textContent ?? "").length > 0);

  it("streams a reply onto the page before upstream has finished sending it", async () => {
    await open(allowed.url);
    await send("Tell me about streaming");
    await firstWords();
    const upstream = await fake.waitForRequest((r) => r.path === "/v1/chat/completions");
    expect(upstream.finishedAt).toBeUndefined();
    expect((await assistantText())?.length).toBeLessThan("Hello! You said: Tell me about streaming".length);

    await page.waitForSelector(".message.assistant.done");
    expect(await assistantText()).toBe("Hello! You said: Tell me about streaming");
    expect(await page.getAttribute("#status", "data-state")).toBe("done");
    mkdirSync(RESULTS_DIR, { recursive: true });
    await page.screenshot({ path: join(RESULTS_DIR, "demo-streaming.png") });
  });

  it("Stop aborts the reply, and upstream sees the request cancelled within a second", async () => {
    await open(allowed.url);
    await send("Please stop me");
    await firstWords();
    const upstream = await fake.waitForRequest((r) => r.path === "/v1/chat/completions");
    await page.click("#stop");
    const closed = await fake.waitForClose(upstream.id, 1000);
    expect(closed.clientClosedEarly).toBe(true);
    await page.waitForSelector(".message.assistant.stopped");
    expect(await page.getAttribute("#status", "data-state")).toBe("stopped");
  });

  it("on a disallowed origin, the browser blocks the call and upstream receives nothing", async () => {
    await open(disallowed.url);
    await send("Hello from elsewhere");
    await page.waitForSelector(".message.error");
    expect(await page.textContent(".message.error .content")).toContain("Could not reach the proxy");
    expect(fake.requests).toHaveLength(0);
  });

  it("runs the official openai SDK inside the page: its x-stainless headers pass the preflight and it streams", async () => {
    await open(allowed.url);
    await page.addScriptTag({ content: await openaiBrowserBundle() });
    const text = await page.evaluate(async (baseURL) => {
      type Sdk = new (
        options: object,
      ) => {
        chat: {
          completions: { create(body: object): Promise<AsyncIterable<{ choices: { delta: { content?: string } }[] }>> };
        };
      };
      const OpenAI = (globalThis as unknown as { OpenAI: Sdk }).OpenAI;
      const client = new OpenAI({ baseURL, apiKey: "unused", dangerouslyAllowBrowser: true, maxRetries: 0 });
      const stream = await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "from the SDK" }],
        stream: true,
      });
      let out = "";
      for await (const chunk of stream) out += chunk.choices[0]?.delta.content ?? "";
      return out;
    }, `${proxy.url}/v1`);
    expect(text).toBe("Hello! You said: from the SDK");
    const upstream = fake.requests.at(-1);
    expect(Object.keys(upstream?.headers ?? {}).some((name) => name.startsWith("x-stainless-"))).toBe(true);
    expect(upstream?.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it("lets the SDK in a page read x-should-retry: a refused key costs one upstream call, not three", async () => {
    await open(allowed.url);
    await page.addScriptTag({ content: await openaiBrowserBundle() });
    const outcome = await page.evaluate(async (baseURL) => {
      type Sdk = new (options: object) => { chat: { completions: { create(body: object): Promise<unknown> } } };
      const OpenAI = (globalThis as unknown as { OpenAI: Sdk }).OpenAI;
      // The SDK's default: up to two retries, unless the answer says x-should-retry: false.
      const client = new OpenAI({ baseURL, apiKey: "unused", dangerouslyAllowBrowser: true });
      try {
        await client.chat.completions.create({ model: "fault-401", messages: [{ role: "user", content: "hi" }] });
        return { status: 200, retry: null };
      } catch (error) {
        const e = error as { status?: number; headers?: Headers };
        return { status: e.status ?? 0, retry: e.headers?.get("x-should-retry") ?? null };
      }
    }, `${proxy.url}/v1`);
    expect(outcome).toEqual({ status: 502, retry: "false" });
    expect(fake.requests.filter((r) => r.path === "/v1/chat/completions")).toHaveLength(1);
  });

  it.each([
    ["fault-429", /^Rate limited.*2 s/],
    ["fault-500", /^The AI service had a problem \(500\)/],
  ])("shows an upstream %s as a readable message", async (model, message) => {
    await open(allowed.url);
    await send("this will fail", model);
    await page.waitForSelector(".message.error");
    expect(await page.textContent(".message.error .content")).toMatch(message);
    expect(await page.getAttribute("#status", "data-state")).toBe("error");
  });
  describe("behind signed tokens", () => {
    const SECRET = "browser-token-secret-long-enough-for-hs256";
    let guarded: DevProxy;

    beforeAll(async () => {
      guarded = await startWranglerDev({
        OPENAI_BASE_URL: fake.url,
        OPENAI_API_KEY: KEY,
        ALLOWED_ORIGINS: `${allowed.url},${disallowed.url}`,
        PROXY_JWT_SECRET: SECRET,
      });
    });
    afterAll(async () => {
      await guarded?.stop();
      expect(guarded?.output() ?? "").not.toContain(SECRET);
    });

    it("streams a reply for a page with a token minted for its origin", async () => {
      const token = await mintToken({ secret: SECRET, sub: "page-user", ttlSeconds: 300, origin: allowed.url });
      await open(allowed.url, guarded.url, token);
      await send("Hello with a token");
      await page.waitForSelector(".message.assistant.done");
      expect(await assistantText()).toBe("Hello! You said: Hello with a token");
    });

    it("refuses the same token on another origin, readably", async () => {
      const token = await mintToken({ secret: SECRET, sub: "page-user", ttlSeconds: 300, origin: allowed.url });
      await open(disallowed.url, guarded.url, token);
      await send("Stolen token");
      await page.waitForSelector(".message.error");
      expect(await page.textContent(".message.error .content")).toMatch(/^Not allowed/);
      expect(fake.requests).toHaveLength(0);
    });

    it("refuses a page without a token, readably", async () => {
      await open(allowed.url, guarded.url);
      await send("No token");
      await page.waitForSelector(".message.error");
      expect(await page.textContent(".message.error .content")).toMatch(/^Not allowed/);
    });
  });

  describe("a page with no backend, on Turnstile sessions", () => {
    const JWT_SECRET = "session-signing-secret-for-the-browser-test";
    let turnstile: FakeTurnstile;
    let sessions: DevProxy;
    let capped: DevProxy;
    /** What sessions need, on a proxy that allows both test pages. */
    const sessionVars = () => ({
      OPENAI_BASE_URL: fake.url,
      OPENAI_API_KEY: KEY,
      ALLOWED_ORIGINS: `${allowed.url},${disallowed.url}`,
      TURNSTILE_SECRET_KEY: TURNSTILE_TEST_KEYS.passSecret,
      TURNSTILE_SITE_KEY: TURNSTILE_TEST_KEYS.passSiteKey,
      TURNSTILE_SITEVERIFY_URL: turnstile.siteverifyUrl,
      PROXY_JWT_SECRET: JWT_SECRET,
      // A dear gpt-4o-mini ($0.001 a token) and a 50-token cap: a short first message reserves about $0.15
      // and costs about $0.01; a long second one reserves more than the rest of a $0.20 budget.
      MODEL_PRICES: '{"gpt-4o-mini": {"input": 1000, "output": 1000}}',
      MAX_OUTPUT_TOKENS: "50",
      SESSION_DAILY_USD: "0.20",
    });

    beforeAll(async () => {
      turnstile = await startFakeTurnstile();
      sessions = await startWranglerDev(sessionVars());
      // The same, with a proxy-wide ceiling below what one message reserves.
      capped = await startWranglerDev({ ...sessionVars(), SESSION_DAILY_USD: "5", DAILY_SPEND_LIMIT_USD: "0.1" });
    });
    afterAll(async () => {
      await Promise.all([sessions?.stop(), capped?.stop()]);
      await turnstile?.close();
      expect(sessions?.output() ?? "").not.toContain(JWT_SECRET);
    });

    async function openSessionPage(origin: string, proxyUrl: string, on: Page = page): Promise<void> {
      const query = `proxy=${encodeURIComponent(proxyUrl)}&turnstile=${encodeURIComponent(turnstile.scriptUrl)}`;
      await on.goto(`${origin}/?${query}`);
      await on.waitForSelector("body[data-ready='true']");
    }

    it("gets a session through the widget, streams, and shows the budget left", async () => {
      await openSessionPage(allowed.url, sessions.url);
      await send("Hello with a session");
      await page.waitForSelector(".message.assistant.done");
      expect(await assistantText()).toBe("Hello! You said: Hello with a session");
      expect(await page.getAttribute("body", "data-session")).toBe("ready");
      // One siteverify call, for this page's host, with the token the widget issued.
      expect(turnstile.calls.at(-1)?.response).toMatch(/^standin\./);
      const left = Number(await page.getAttribute("#quota", "data-remaining"));
      expect(left).toBeGreaterThan(0);
      // What was left when the reply began: this message's reservation held.
      expect(left).toBeLessThan(0.2);
      expect(await page.textContent("#quota")).toMatch(/^Budget today: \$0\.\d{4} of \$0\.20 left$/);
    });

    it("refuses the same Turnstile token a second time", async () => {
      await openSessionPage(allowed.url, sessions.url);
      await send("First");
      await page.waitForSelector(".message.assistant.done");
      const replay = await page.evaluate(async (proxyUrl) => {
        const token = (window as unknown as { turnstile: { getResponse(): string } }).turnstile.getResponse();
        const response = await fetch(`${proxyUrl}/session`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ turnstile: token }),
        });
        return { status: response.status, body: await response.json() };
      }, sessions.url);
      expect(replay.status).toBe(403);
      expect(replay.body.error).toMatchObject({
        code: "turnstile_failed",
        message: expect.stringContaining("already used"),
      });
    });

    it("refuses a session token used from another origin", async () => {
      await openSessionPage(allowed.url, sessions.url);
      // The session as the page received it: what a script on the page, or a thief, could take.
      const minted = page.waitForResponse((response) => response.url() === `${sessions.url}/session`);
      await send("Mine");
      const { token } = (await (await minted).json()) as { token: string };
      await page.waitForSelector(".message.assistant.done");
      fake.reset();
      await open(disallowed.url, sessions.url, token);
      await send("Stolen session");
      await page.waitForSelector(".message.error");
      expect(await page.textContent(".message.error .content")).toMatch(/^Not allowed/);
      expect(fake.requests).toHaveLength(0);
    });

    it("after its daily budget, shows the 429 readably and the budget as spent", async () => {
      await openSessionPage(allowed.url, sessions.url);
      await send("One");
      await page.waitForSelector(".message.assistant.done");
      await send(`Two, and a long question: ${"why? ".repeat(30)}`);
      await page.waitForSelector(".message.error");
      expect(await page.textContent(".message.error .content")).toMatch(
        /^Out of budget for today: .* daily budget left, and this request may cost up to \$/,
      );
      expect(await page.getAttribute("#quota", "data-spent")).toBe("true");
      expect(await page.textContent("#quota")).toMatch(/left: not enough for this message \(renews at 00:00 UTC\)$/);
      expect(fake.requests.filter((r) => r.path.endsWith("/chat/completions"))).toHaveLength(1);
    });

    it("stops every visitor together once the proxy's spending limit is reached", async () => {
      fake.reset();
      const other = await browser.newPage();
      try {
        for (const visitor of [page, other]) {
          await openSessionPage(allowed.url, capped.url, visitor);
          await visitor.fill("#prompt", "Hello");
          await visitor.click("#send");
          await visitor.waitForSelector(".message.error");
          expect(await visitor.textContent(".message.error .content")).toMatch(
            /^Out of budget for today: .*daily spending limit for all its users/,
          );
        }
      } finally {
        await other.close();
      }
      expect(fake.requests).toHaveLength(0);
    });
  });
});
