import { describe, expect, it } from "vitest";
import { formFields } from "./multipart";

async function form(parts: Array<[string, string | Blob, string?]>): Promise<{ bytes: Uint8Array; type: string }> {
  const data = new FormData();
  for (const [name, value, filename] of parts) {
    if (typeof value === "string") data.append(name, value);
    else data.append(name, value, filename);
  }
  const request = new Request("http://x", { method: "POST", body: data });
  return { bytes: new Uint8Array(await request.arrayBuffer()), type: request.headers.get("content-type") ?? "" };
}

describe("formFields", () => {
  it("reads the named text fields, before or after a file", async () => {
    const audio = new Blob([new Uint8Array(50_000).fill(0x2d)], { type: "audio/mpeg" });
    const { bytes, type } = await form([
      ["file", audio, "a.mp3"],
      ["model", "gpt-4o-transcribe"],
      ["language", "en"],
      ["stream", "true"],
    ]);
    expect(formFields(bytes, type, ["model", "stream"])).toEqual(
      new Map([
        ["model", ["gpt-4o-transcribe"]],
        ["stream", ["true"]],
      ]),
    );
  });

  it("never takes a file part for a field, even one named like it", async () => {
    const { bytes, type } = await form([["model", new Blob(["o1"]), "model.txt"]]);
    expect(formFields(bytes, type, ["model"])).toEqual(new Map());
  });

  it("lists every value of a field sent twice", async () => {
    const { bytes, type } = await form([
      ["model", "a"],
      ["model", "b"],
    ]);
    expect(formFields(bytes, type, ["model"])?.get("model")).toEqual(["a", "b"]);
  });

  it("is null for a body that is not the form its content type says", () => {
    const bytes = new TextEncoder().encode("not a form");
    expect(formFields(bytes, "multipart/form-data; boundary=abc", ["model"])).toBeNull();
    expect(formFields(bytes, "multipart/form-data", ["model"])).toBeNull();
  });
});
