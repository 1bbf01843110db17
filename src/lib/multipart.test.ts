import { describe, expect, it } from "vitest";
import { formFields, MAX_FIELD_BYTES } from "./multipart";

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
    expect(formFields(bytes, type, ["model", "stream"])).toEqual({
      fields: new Map([
        ["model", ["gpt-4o-transcribe"]],
        ["stream", ["true"]],
      ]),
      files: 1,
    });
  });

  it("never takes a file part for a field, even one named like it", async () => {
    const { bytes, type } = await form([["model", new Blob(["o1"]), "model.txt"]]);
    expect(formFields(bytes, type, ["model"])).toEqual({ fields: new Map(), files: 1 });
  });

  it("lists every value of a field sent twice", async () => {
    const { bytes, type } = await form([
      ["model", "a"],
      ["model", "b"],
    ]);
    expect(formFields(bytes, type, ["model"])?.fields.get("model")).toEqual(["a", "b"]);
  });

  it("is null for a body that is not the form its content type says", () => {
    const bytes = new TextEncoder().encode("not a form");
    expect(formFields(bytes, "multipart/form-data; boundary=abc", ["model"])).toBeNull();
    expect(formFields(bytes, "multipart/form-data", ["model"])).toBeNull();
  });

  describe("reads what any conforming parser reads, however the form is dressed", () => {
    const raw = (text: string) => new TextEncoder().encode(text.replaceAll("\n", "\r\n"));
    const field = (boundary: string, name: string, value: string) =>
      `--${boundary}\nContent-Disposition: form-data; name="${name}"\n\n${value}\n`;

    it("takes the boundary from the boundary parameter only, quoted or not", () => {
      const body = raw(`${field("b1", "model", "gpt-4o-transcribe")}--b1--\n`);
      expect(formFields(body, "multipart/form-data; boundary=b1", ["model"])?.fields.get("model")).toEqual([
        "gpt-4o-transcribe",
      ]);
      expect(formFields(body, 'multipart/form-data; boundary="b1"', ["model"])?.fields.get("model")).toEqual([
        "gpt-4o-transcribe",
      ]);
      expect(formFields(body, "multipart/form-data; xboundary=b1", ["model"])).toBeNull();
      expect(formFields(body, "multipart/form-data; boundary=b1; boundary=b2", ["model"])).toBeNull();
    });

    it("does not end a file at a delimiter that is not at the start of a line", () => {
      // A file part carrying "--b1" and a fake model field inside it: a lenient parser would read "o1-pro".
      const file = `--b1\nContent-Disposition: form-data; name="file"; filename="a.mp3"\n\nxx--b1\nContent-Disposition: form-data; name="model"\n\no1-pro\n`;
      const body = raw(`${file}${field("b1", "model", "whisper-1")}--b1--\n`);
      const form = formFields(body, "multipart/form-data; boundary=b1", ["model"]);
      expect(form?.fields.get("model")).toEqual(["whisper-1"]);
      expect(form?.files).toBe(1);
    });

    it("counts a part with filename* as a file, not a field", () => {
      const body = raw(
        `--b1\nContent-Disposition: form-data; name="model"; filename*=UTF-8''m.txt\n\no1-pro\n${field("b1", "model", "whisper-1")}--b1--\n`,
      );
      expect(formFields(body, "multipart/form-data; boundary=b1", ["model"])).toEqual({
        fields: new Map([["model", ["whisper-1"]]]),
        files: 1,
      });
    });

    it("is null for a part without a quoted name, an unclosed form, or a field too long to be one", () => {
      const type = "multipart/form-data; boundary=b1";
      const nameless = raw("--b1\nContent-Disposition: form-data; name=model\n\nwhisper-1\n--b1--\n");
      expect(formFields(nameless, type, ["model"])).toBeNull();
      expect(formFields(raw(field("b1", "model", "whisper-1")), type, ["model"])).toBeNull();
      const long = raw(`${field("b1", "model", "x".repeat(MAX_FIELD_BYTES + 1))}--b1--\n`);
      expect(formFields(long, type, ["model"])).toBeNull();
    });
  });
});
