import { describe, expect, it } from "vitest";
import type { Env } from "../env";
import { getConfig, parseConfig } from ".";

const env = (vars: Record<string, string>) => ({ OPENAI_API_KEY: "sk-unit", ...vars }) as unknown as Env;

describe("parseConfig", () => {
  it("applies the documented defaults", () => {
    const config = parseConfig(env({}));
    expect(config).toMatchObject({
      upstream: {
        upstreams: [
          {
            name: "openai",
            kind: "openai",
            baseUrl: "https://api.openai.com/v1",
            basePath: "/v1",
            keys: ["sk-unit"],
            models: null,
            weight: 1,
            azure: null,
          },
        ],
        configured: false,
        attempts: 2,
        timeoutMs: 600_000,
        streamIdleTimeoutMs: 300_000,
      },
      seed: { model: "gpt-3.5-turbo", temperature: 0.7, maxTokens: 1000 },
      body: { maxBytes: 100 * 1024 * 1024 },
      usage: { log: true, record: true },
      policy: { allowedModels: null, allowedPaths: null, maxOutputTokens: null },
      limits: { rpm: 60, maxStreams: 5, dailyTokenBudget: null },
      errors: [],
    });
    expect(config.cors.origins.any).toBe(true);
  });

  it("reports every bad setting at once, by name", () => {
    const { errors } = parseConfig(
      env({
        OPENAI_API_KEY: " ",
        OPENAI_BASE_URL: "not a url",
        ALLOWED_ORIGINS: "example.com",
        DEFAULT_TEMPERATURE: "3",
        DEFAULT_MAX_TOKENS: "1.5",
        MAX_BODY_BYTES: "0",
        UPSTREAM_TIMEOUT_MS: "soon",
        LOG_REQUESTS: "sometimes",
      }),
    );
    expect(errors).toHaveLength(8);
    for (const name of [
      "OPENAI_API_KEY",
      "OPENAI_BASE_URL",
      "ALLOWED_ORIGINS",
      "DEFAULT_TEMPERATURE",
      "DEFAULT_MAX_TOKENS",
      "MAX_BODY_BYTES",
      "UPSTREAM_TIMEOUT_MS",
    ]) {
      expect(
        errors.some((e) => e.startsWith(name)),
        name,
      ).toBe(true);
    }
  });

  it("reports every bad spending and session setting at once, by name", () => {
    const { errors } = parseConfig(
      env({
        DAILY_SPEND_LIMIT_USD: "ten",
        DAILY_BUDGET_USD: "-1",
        SPEND_LEASE_SECONDS: "60",
        FALLBACK_PRICE: '{"input": "dear"}',
        TURNSTILE_SECRET_KEY: "0x4AAAA-secret",
        TURNSTILE_SITEVERIFY_URL: "ftp://x",
        SESSION_TTL_SECONDS: "0",
        SESSION_DAILY_USD: "free",
      }),
    );
    for (const name of [
      "DAILY_SPEND_LIMIT_USD",
      "DAILY_BUDGET_USD",
      "SPEND_LEASE_SECONDS",
      "FALLBACK_PRICE",
      "TURNSTILE_SITEVERIFY_URL",
      "SESSION_TTL_SECONDS",
      "SESSION_DAILY_USD",
    ]) {
      expect(
        errors.some((e) => e.startsWith(name)),
        name,
      ).toBe(true);
    }
    // Sessions need a real allowlist (not the default "*") and a secret to sign their tokens.
    expect(errors).toContain("TURNSTILE_SECRET_KEY needs ALLOWED_ORIGINS to list your pages' origins, not *");
    expect(errors).toContain("TURNSTILE_SECRET_KEY needs PROXY_JWT_SECRET, which signs the session tokens");
    expect(errors.join("\n")).not.toContain("0x4AAAA-secret");
  });

  it("reads the spend ceiling, dollar budgets and sessions", () => {
    const config = parseConfig(
      env({
        DAILY_SPEND_LIMIT_USD: "25.5",
        DAILY_BUDGET_USD: "0.2",
        TURNSTILE_SECRET_KEY: "0x4AAAA-secret",
        PROXY_JWT_SECRET: "a-session-signing-secret-of-at-least-32-chars",
        ALLOWED_ORIGINS: "https://chat.example.com",
      }),
    );
    expect(config).toMatchObject({
      ceiling: { dailyLimitUsd: 25.5, leaseMs: 20_000 },
      limits: { dailyBudgetUsd: 0.2 },
      sessions: {
        enabled: true,
        siteverifyUrl: "https://challenges.cloudflare.com/turnstile/v0/siteverify",
        ttlSeconds: 900,
        mintsPerHour: 10,
      },
      errors: [],
    });
    expect(parseConfig(env({ DAILY_SPEND_LIMIT_USD: "" })).ceiling.dailyLimitUsd).toBeNull();
  });

  it.each(["https://user:pass@api.test/v1", "https://api.test/v1?x=1", "file:///etc/passwd"])(
    "refuses OPENAI_BASE_URL %s without echoing it",
    (url) => {
      const { errors } = parseConfig(env({ OPENAI_BASE_URL: url }));
      expect(errors).toHaveLength(1);
      expect(errors[0]).not.toContain("pass");
    },
  );

  it("refuses a key that cannot be sent in a header, without echoing it", () => {
    const { errors } = parseConfig(env({ OPENAI_API_KEY: "sk-abc\ndef", OPENAI_PROJECT: "proj x" }));
    expect(errors).toEqual([
      "OPENAI_API_KEY contains characters that cannot be sent in a header",
      "OPENAI_PROJECT contains characters that cannot be sent in a header",
    ]);
  });

  it("strips a trailing slash from OPENAI_BASE_URL", () => {
    expect(parseConfig(env({ OPENAI_BASE_URL: "http://127.0.0.1:9999/v1/" })).upstream.upstreams[0]?.baseUrl).toBe(
      "http://127.0.0.1:9999/v1",
    );
  });

  it("never puts the key in an error", () => {
    const { errors } = parseConfig(env({ OPENAI_API_KEY: "sk-unit", MAX_BODY_BYTES: "x" }));
    expect(errors.join()).not.toContain("sk-unit");
  });
});

describe("getConfig", () => {
  it("parses each env object once", () => {
    const e = env({});
    expect(getConfig(e)).toBe(getConfig(e));
  });
});
