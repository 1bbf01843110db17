import { describe, expect, it } from "vitest";
import { isOriginAllowed, parseOrigins } from "./origins";

const policy = parseOrigins("https://app.example.com, http://localhost:5173, https://*.example.org").policy;

describe("parseOrigins", () => {
  it("treats * alone as any origin", () => {
    expect(parseOrigins("*").policy.any).toBe(true);
  });

  it("reports every entry that is not an origin or a pattern", () => {
    const { errors } = parseOrigins("https://ok.example.com,example.com,https://a.example.com/path,*");
    expect(errors).toHaveLength(3);
    expect(errors.join()).toContain('"example.com"');
    expect(errors.join()).toContain('"https://a.example.com/path"');
  });

  it("accepts a trailing slash on an exact origin", () => {
    const { policy, errors } = parseOrigins("https://app.example.com/");
    expect(errors).toEqual([]);
    expect(isOriginAllowed(policy, "https://app.example.com")).toBe(true);
  });
});

describe("isOriginAllowed", () => {
  it.each([
    ["https://app.example.com", true],
    ["http://localhost:5173", true],
    ["https://a.example.org", true],
    ["https://a.b.example.org", true],
    ["https://example.org", false],
    ["https://app.example.com.evil.com", false],
    ["https://evilexample.org", false],
    ["https://a.example.org.evil.com", false],
    ["http://app.example.com", false],
    ["http://a.example.org", false],
    ["https://a.example.org:8443", false],
    ["http://localhost:3000", false],
    ["null", false],
    ["", false],
    ["https://app.example.com/", false],
  ])("%s → %s", (origin, expected) => {
    expect(isOriginAllowed(policy, origin)).toBe(expected);
  });

  it("matches the port of a wildcard pattern", () => {
    const withPort = parseOrigins("https://*.example.org:8443").policy;
    expect(isOriginAllowed(withPort, "https://a.example.org:8443")).toBe(true);
    expect(isOriginAllowed(withPort, "https://a.example.org")).toBe(false);
  });
});
