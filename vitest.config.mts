import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        // The Worker's logic, inside workerd, with the bindings and flags of wrangler.jsonc.
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.jsonc" },
            // A generous rate limit, so that only the tests about limits meet one.
            miniflare: {
              bindings: {
                OPENAI_API_KEY: "sk-test-secret-key-0123456789abcdef",
                RATE_LIMIT_RPM: "100000",
                // No spend ceiling unless a test sets one (with a short slice): its slices outlive a request.
                DAILY_SPEND_LIMIT_USD: "",
                // Short slices of the limits: a request's settlement waits for its slice to come back.
                SPEND_LEASE_SECONDS: "0.2",
                // The D1 migrations, applied to USAGE_DB by src/testing/d1-setup.ts.
                TEST_MIGRATIONS: await readD1Migrations(fileURLToPath(new URL("./migrations", import.meta.url))),
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["src/**/*.test.ts"],
          setupFiles: ["src/testing/setup.ts", "src/testing/d1-setup.ts"],
        },
      },
      {
        // What crosses the network: a real `wrangler dev`, real SDKs, a real browser, the fake upstream.
        test: {
          name: "e2e",
          include: ["test/**/*.test.ts", "tools/**/*.test.ts"],
          environment: "node",
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
