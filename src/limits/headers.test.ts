import { describe, expect, it } from "vitest";
import { budgetHeaders, formatReset, rateLimitHeaders } from "./headers";
import type { Admission, BudgetState } from "./rate-limiter";

const NO_BUDGET: BudgetState = { tokens: null, usd: null, resetMs: 0 };

describe("formatReset", () => {
  it.each([
    [0, "0s"],
    [-5, "0s"],
    [Number.NaN, "0s"],
    [1, "1ms"],
    [120, "120ms"],
    [999, "999ms"],
    [999.2, "1s"],
    [1000, "1s"],
    [1050, "1.05s"],
    [1234, "1.234s"],
    [1500, "1.5s"],
    [60_000, "1m0s"],
    [61_500, "1m1.5s"],
    [360_000, "6m0s"],
    [3_600_000, "1h0m0s"],
    [3_723_004, "1h2m3.004s"],
  ])("writes %s ms as %s", (ms, expected) => {
    expect(formatReset(ms)).toBe(expected);
  });
});

describe("rateLimitHeaders", () => {
  it("tells an admitted request what is left, without retry-after", () => {
    const admission: Admission = {
      ok: true,
      limit: 60,
      remaining: 59,
      resetMs: 60_000,
      slot: null,
      reservation: null,
      budget: NO_BUDGET,
    };
    expect(rateLimitHeaders(admission)).toEqual({
      "x-ratelimit-limit-requests": "60",
      "x-ratelimit-remaining-requests": "59",
      "x-ratelimit-reset-requests": "1m0s",
    });
  });

  it("adds retry-after in seconds to a refusal", () => {
    const admission: Admission = {
      ok: false,
      reason: "requests",
      limit: 10,
      remaining: 0,
      resetMs: 42_500,
      retryAfterSeconds: 3,
      budget: NO_BUDGET,
    };
    expect(rateLimitHeaders(admission)).toEqual({
      "x-ratelimit-limit-requests": "10",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "42.5s",
      "retry-after": "3",
    });
  });
});

describe("budgetHeaders", () => {
  it("tells a page what is left of its daily budgets, in dollars and tokens, and when they renew", () => {
    expect(
      budgetHeaders({
        usd: { limit: 0.1, remaining: 0.0931234 },
        tokens: { limit: 5000, remaining: 1200 },
        resetMs: 3_600_000,
      }),
    ).toEqual({
      "x-budget-limit-usd": "0.1",
      "x-budget-remaining-usd": "0.093123",
      "x-budget-limit-tokens": "5000",
      "x-budget-remaining-tokens": "1200",
      "x-budget-reset": "1h0m0s",
    });
  });

  it("says nothing when no budget applies", () => {
    expect(budgetHeaders(NO_BUDGET)).toEqual({});
  });
});
