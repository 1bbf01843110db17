import { describe, expect, it } from "vitest";
import { parseKeyLimits } from "./key-limits";

describe("parseKeyLimits", () => {
  it("starts an entry at each name: and adds bare items to the entry before them", () => {
    expect(parseKeyLimits("backend:rpm=600,streams=50,web:rpm=30")).toEqual({
      limits: new Map([
        ["backend", { rpm: 600, maxStreams: 50 }],
        ["web", { rpm: 30 }],
      ]),
      errors: [],
    });
  });

  it("reads tokens_per_day as tokensPerDay, and tolerates spaces and empty items", () => {
    expect(parseKeyLimits(" web : tokens_per_day = 100000 , streams=2,, ")).toEqual({
      limits: new Map([["web", { tokensPerDay: 100_000, maxStreams: 2 }]]),
      errors: [],
    });
  });

  it("returns no limits and no errors when unset or empty", () => {
    expect(parseKeyLimits(undefined)).toEqual({ limits: new Map(), errors: [] });
    expect(parseKeyLimits("")).toEqual({ limits: new Map(), errors: [] });
  });

  it("reports every bad item at once, and still parses the good ones", () => {
    const { limits, errors } = parseKeyLimits(
      "rpm=5,web:rpm=abc,streams=0,burst=9,web:rpm=30,rpm=40,backend:,:rpm=1,app:rpm,big:rpm=99999999999999999,ok:rpm=7,tokens_per_day=-1",
    );
    expect(errors).toEqual([
      '"rpm=5": no key name before it (e.g. web:rpm=5)',
      '"web:rpm=abc": rpm must be a positive integer (got "abc")',
      '"streams=0": streams must be a positive integer (got "0")',
      '"burst=9": unknown limit "burst" (use rpm, streams, tokens_per_day or usd_per_day)',
      '"web:rpm=30": web is listed twice',
      '"rpm=40": rpm is already set for web',
      '"backend:": no limit after the key name (e.g. backend:rpm=60)',
      '":rpm=1": a key name must be non-empty, without spaces',
      '"app:rpm": expected limit=value (e.g. rpm=60)',
      '"big:rpm=99999999999999999": rpm must be a positive integer (got "99999999999999999")',
      '"tokens_per_day=-1": tokens_per_day must be a positive integer (got "-1")',
    ]);
    expect(limits.get("web")).toEqual({ rpm: 30 });
    expect(limits.get("ok")).toEqual({ rpm: 7 });
  });
});

describe("parseKeyLimits in US dollars", () => {
  it("reads usd_per_day as a number of dollars, cents included", () => {
    expect(parseKeyLimits("web:usd_per_day=0.25,backend:usd_per_day=20").limits).toEqual(
      new Map([
        ["web", { usdPerDay: 0.25 }],
        ["backend", { usdPerDay: 20 }],
      ]),
    );
  });

  it.each(["0", "-1", "1e3", "abc", "0.", ""])("refuses usd_per_day=%s", (value) => {
    expect(parseKeyLimits(`web:usd_per_day=${value}`).errors).toHaveLength(1);
  });
});
