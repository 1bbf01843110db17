import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/wrangler-dev";
import { proxyWithFake, totalRequests, usageRows } from "./support/proxy";

const KEY = "sk-usage-e2e-upstream-key-77aa88bb99cc";
const CLIENT_KEY = "pk_reports_0123456789abcdef0123";
const ADMIN = "admin-token-for-the-usage-e2e-test";

const env = proxyWithFake(
  (upstream) => ({
    OPENAI_BASE_URL: upstream,
    OPENAI_API_KEY: KEY,
    PROXY_KEYS: `reports:${CLIENT_KEY}`,
    ADMIN_TOKEN: ADMIN,
  }),
  [KEY, CLIENT_KEY, ADMIN],
);

describe("usage through wrangler dev and its local D1", () => {
  it("records a streamed chat through the official SDK, visible in /admin/usage and npm run usage", async () => {
    const client = new OpenAI({ baseURL: `${env.proxy.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "count my tokens please" }],
      stream: true,
    });
    let sawUsage = false;
    let text = "";
    for await (const chunk of stream) {
      if (chunk.usage) sawUsage = true;
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    expect(text).toBe("Hello! You said: count my tokens please");
    // The proxy asked upstream for usage; the client, which did not, sees none.
    expect(sawUsage).toBe(false);
    expect(env.fake.requests.at(-1)?.json).toMatchObject({ stream_options: { include_usage: true } });

    // The fake counts words: 4 + 3 for the one message; the reply has 7 words.
    const rows = await usageRows(env.proxy, ADMIN, "client", (rows) => totalRequests(rows) >= 1);
    expect(rows).toEqual([
      expect.objectContaining({
        key: "reports",
        requests: 1,
        prompt_tokens: 7,
        completion_tokens: 7,
        total_tokens: 14,
      }),
    ]);
    expect(rows[0]?.cost_usd).toBeGreaterThan(0);

    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        join(ROOT, "node_modules/tsx/dist/cli.mjs"),
        join(ROOT, "scripts/usage.ts"),
        "--by",
        "model",
        "--persist-to",
        env.proxy.persistDir,
      ],
      { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" } },
    );
    const line = stdout.split("\n").find((l) => l.includes("gpt-4o-mini"));
    expect(line).toBeDefined();
    expect(line?.split(/\s+/).filter(Boolean).slice(1, 5)).toEqual(["1", "7", "7", "14"]);
  });

  it("refuses the admin report without the admin token", async () => {
    expect((await fetch(`${env.proxy.url}/admin/usage`)).status).toBe(401);
    expect(
      (await fetch(`${env.proxy.url}/admin/usage`, { headers: { authorization: `Bearer ${CLIENT_KEY}` } })).status,
    ).toBe(401);
  });
});
