import { describe, expect, it } from "vitest";
import { formatReset, rateLimitHeaders } from "./headers";
import type { Admission } from "./rate-limiter";

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
    const admission: Admission = { ok: true, limit: 60, remaining: 59, resetMs: 60_000, slot: null, reservation: null };
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
    };
    expect(rateLimitHeaders(admission)).toEqual({
      "x-ratelimit-limit-requests": "10",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "42.5s",
      "retry-after": "3",
    });
  });
});
