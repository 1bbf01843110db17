import { describe, expect, it } from "vitest";
import { compilePatterns, matchesAny } from "./patterns";

describe("compilePatterns", () => {
  const patterns = compilePatterns("gpt-4o-mini, gpt-4.1*") ?? [];

  it.each([
    ["gpt-4o-mini", true],
    ["gpt-4.1", true],
    ["gpt-4.1-mini", true],
    ["gpt-4o", false],
    ["gpt-4o-mini-2024", false],
    ["gpt-4x1", false],
  ])("%s → %s", (model, expected) => {
    expect(matchesAny(patterns, model)).toBe(expected);
  });

  it("means no restriction when empty", () => {
    expect(compilePatterns("")).toBeNull();
    expect(compilePatterns(undefined)).toBeNull();
  });
});
