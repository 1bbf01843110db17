import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concatBytes } from "./bytes";
import { LARGE_STRING_BYTES, memberValue, readJsonObject, withMembers } from "./json-object";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const read = (text: string) => readJsonObject(encoder.encode(text));

describe("readJsonObject", () => {
  it("finds every top-level member and parses each value on demand", () => {
    const object = read(
      ' { "model" : "gpt-4o", "n": 2, "nested": {"model": "other", "list": [1, {"a": "}"}]}, "s": "a\\"b" } ',
    );
    expect(object).not.toBeNull();
    if (object === null) return;
    expect([...object.members.keys()]).toEqual(["model", "n", "nested", "s"]);
    expect(memberValue(object, "model")).toBe("gpt-4o");
    expect(memberValue(object, "n")).toBe(2);
    expect(memberValue(object, "nested")).toEqual({ model: "other", list: [1, { a: "}" }] });
    expect(memberValue(object, "s")).toBe('a"b');
    expect(memberValue(object, "missing")).toBeUndefined();
  });

  it("decodes escaped keys as a JSON parser does", () => {
    const object = read('{"mod\\u0065l":"x"}');
    expect(object?.members.has("model")).toBe(true);
  });

  it("reports a key that appears twice", () => {
    expect([...(read('{"model":"a","x":1,"model":"b"}')?.duplicates ?? [])]).toEqual(["model"]);
  });

  it.each([
    ["an empty body", ""],
    ["an array", "[1,2]"],
    ["a string", '"x"'],
    ["a comment", '{"a":1 /* x */}'],
    ["a trailing comma", '{"a":1,}'],
    ["a trailing comma in an array", '{"a":[1,]}'],
    ["single quotes", "{'a':1}"],
    ["an unquoted key", "{a:1}"],
    ["a bad escape", '{"a":"\\x"}'],
    ["a bad number", '{"a":01}'],
    ["NaN", '{"a":NaN}'],
    ["two objects", '{"a":1}{"b":2}'],
    ["an unclosed object", '{"a":{"b":1}'],
    ["a byte order mark", '\uFEFF{"a":1}'],
  ])("refuses %s", (_, text) => {
    expect(read(text)).toBeNull();
  });

  it("reads what JSON.parse reads, for any JSON object", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (value) => {
        const object = read(JSON.stringify(value));
        expect(object).not.toBeNull();
        if (object === null) return;
        expect(new Set(object.members.keys())).toEqual(new Set(Object.keys(value)));
        for (const key of Object.keys(value))
          expect(memberValue(object, key)).toEqual(JSON.parse(JSON.stringify(value[key])));
      }),
    );
  });

  it("accepts nothing that JSON.parse refuses, and reads the same keys from what both accept", () => {
    const pieces = fc.constantFrom(
      "{",
      "}",
      "[",
      "]",
      '"a"',
      '"model"',
      ":",
      ",",
      "1",
      "-0.5e3",
      "true",
      "null",
      " ",
      '"\\"',
      '"\\u0041"',
      "/*",
      "x",
    );
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 14 }), (parts) => {
        const text = parts.join("");
        const object = read(text);
        if (object === null) return;
        const parsed: unknown = JSON.parse(text);
        expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)).toBe(true);
        expect(new Set(object.members.keys())).toEqual(new Set(Object.keys(parsed as object)));
      }),
      { numRuns: 2000 },
    );
  });

  it("lists long strings (base64 payloads) without decoding them", () => {
    const payload = "A".repeat(LARGE_STRING_BYTES);
    const object = read(
      JSON.stringify({ messages: [{ content: [{ image_url: { url: `data:image/png;base64,${payload}` } }] }] }),
    );
    expect(object?.largeStrings).toHaveLength(1);
  });

  it("reads the members of a 20 MB body around its long string", () => {
    const big = encoder.encode(
      JSON.stringify({ model: "gpt-4o", messages: [{ content: "B".repeat(20 * 1024 * 1024) }] }),
    );
    const object = readJsonObject(big);
    expect(memberValue(object ?? (null as never), "model")).toBe("gpt-4o");
  });
});

describe("withMembers", () => {
  it("replaces a member in place and adds new ones first, leaving every other byte as it was", () => {
    const object = read('{ "model": "a",\n  "keep":  [1, 2] }');
    if (object === null) throw new Error("not read");
    const out = decoder.decode(concatBytes(withMembers(object, { model: "b", max_tokens: 64 })));
    expect(out).toBe('{"max_tokens":64, "model": "b",\n  "keep":  [1, 2] }');
    expect(JSON.parse(out)).toEqual({ max_tokens: 64, model: "b", keep: [1, 2] });
  });

  it("adds to an empty object without a stray comma", () => {
    const object = read("{}");
    if (object === null) throw new Error("not read");
    expect(decoder.decode(concatBytes(withMembers(object, { a: 1, b: "x" })))).toBe('{"a":1,"b":"x"}');
  });

  it("gives valid JSON with the changes, for any object and any changes", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 6 }),
        fc.dictionary(fc.constantFrom("model", "max_tokens", "stream_options", "n"), fc.jsonValue(), { maxKeys: 3 }),
        (value, changes) => {
          const object = read(JSON.stringify(value));
          if (object === null) throw new Error("not read");
          const parsed = JSON.parse(decoder.decode(concatBytes(withMembers(object, changes))));
          expect(parsed).toEqual(JSON.parse(JSON.stringify({ ...value, ...changes })));
        },
      ),
    );
  });
});
