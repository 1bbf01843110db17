/**
 * The operator's dashboard in Chromium, against a real `wrangler dev` whose ledger is filled through the usage
 * queue: traffic from two client keys on two models, then the page, the admin token, the charts and the top
 * spenders. Leaves a screenshot in test-results/admin.png (docs/admin.png is a copy of one, so that `npm test` never
 * changes a tracked file).
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/wrangler-dev";
import { browserAvailable, launchChromium, RESULTS_DIR } from "./support/browser";
import { proxyWithFake, totalRequests, usageRows } from "./support/proxy";

const ADMIN = "admin-token-for-the-dashboard-test-0123";
const KEYS = { web: "pk_dash_web_0123456789abcdef", backend: "pk_dash_backend_0123456789ab" };
const env = proxyWithFake(
  (upstream) => ({
    OPENAI_BASE_URL: upstream,
    OPENAI_API_KEY: "sk-dashboard-e2e-upstream-key",
    ADMIN_TOKEN: ADMIN,
    PROXY_KEYS: `web:${KEYS.web},backend:${KEYS.backend}`,
    PROXY_KEY_LIMITS: "web:usd_per_day=1",
    RATE_LIMIT_RPM: "1000",
  }),
  [ADMIN, "sk-dashboard-e2e-upstream-key"],
);

describe("the usage ledger through the queue", () => {
  it("keeps one record per request served, none lost, none twice", async () => {
    const sent = 60;
    await Promise.all(
      Array.from({ length: sent }, (_, i) => {
        const sdk = new OpenAI({
          baseURL: `${env.proxy.url}/v1`,
          apiKey: i % 3 === 0 ? KEYS.backend : KEYS.web,
          maxRetries: 0,
        });
        return sdk.chat.completions.create({
          model: i % 2 === 0 ? "gpt-4o-mini" : "gpt-4o",
          messages: [{ role: "user", content: `n${i}` }],
        });
      }),
    );
    const rows = await usageRows(env.proxy, ADMIN, "client", (rows) => totalRequests(rows) >= sent, 20_000);
    expect(totalRequests(rows)).toBe(sent);
    expect(rows.map((row) => row.key).sort()).toEqual(["backend", "web"]);
    // Records of many requests leave together, with no promise of one request left to another's context.
    expect(env.proxy.output()).not.toMatch(/different request context|hung|Cannot perform I\/O on behalf/i);
  });
});

describe.runIf(browserAvailable())("the dashboard in Chromium", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(() => browser?.close());

  it("charts spend after the admin token, lists the top spenders and today's limits", async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1300 } });
    page.setDefaultTimeout(15_000);
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    await page.goto(`${env.proxy.url}/admin`);
    expect(await page.textContent("#status")).toContain("ADMIN_TOKEN");
    await page.fill("#token", "not-the-token");
    await page.click("button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#status")?.getAttribute("data-state") === "error");
    expect(await page.textContent("#status")).toContain("not the proxy's ADMIN_TOKEN");

    await page.fill("#token", ADMIN);
    await page.click("button[type=submit]");
    await page.waitForSelector("body[data-ready='true']").catch((error: unknown) => {
      throw new Error(`${String(error)}; the page said: ${errors.join(" | ")}; status: ${String(page.url())}`);
    });
    // Four charts drawn by uPlot, the spenders' table, and the meters of today's limits.
    expect(await page.locator(".chart canvas").count()).toBe(4);
    const spenders = await page.locator("#spenders tbody tr td:first-child").allTextContents();
    expect(spenders.sort()).toEqual(["backend", "web"]);
    expect(await page.textContent("#limits")).toContain("Proxy's daily ceiling");
    expect(await page.textContent("#limits")).toContain("key:web (USD)");
    mkdirSync(RESULTS_DIR, { recursive: true });
    await page.screenshot({ path: join(RESULTS_DIR, "admin.png"), fullPage: true });
    await page.close();
  });
});

describe("the dashboard's charting library", () => {
  it("is the very uPlot the lock file pins, as the page serves it", () => {
    for (const file of ["uPlot.iife.min.js", "uPlot.min.css"]) {
      const vendored = readFileSync(join(ROOT, "public/admin/vendor", file));
      expect(vendored.equals(readFileSync(join(ROOT, "node_modules/uplot/dist", file))), file).toBe(true);
    }
  });
});
