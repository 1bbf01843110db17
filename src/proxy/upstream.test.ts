import { describe, expect, it } from "vitest";
import { parseConfig, type ReadyUpstream } from "../config";
import type { Env } from "../env";
import { upstreamHeaders, upstreamUrl } from "./upstream";

const config = {
  ...parseConfig({ OPENAI_API_KEY: "sk-unit", OPENAI_BASE_URL: "https://upstream.test/v1" } as Env).upstream,
  apiKey: "sk-unit",
} satisfies ReadyUpstream;

describe("upstreamUrl", () => {
  it("appends the path and query to the base URL", () => {
    expect(upstreamUrl(config, "/files/file-1/content", "?a=1&b=%20")).toBe(
      "https://upstream.test/v1/files/file-1/content?a=1&b=%20",
    );
  });

  it("keeps percent-encoding in the path", () => {
    expect(upstreamUrl(config, "/files/a%2Fb", "")).toBe("https://upstream.test/v1/files/a%2Fb");
  });

  it.each(["//evil.test/x", "/\\\\evil.test/x", "/@evil.test"])("stays on the base origin for %s", (path) => {
    expect(new URL(upstreamUrl(config, path, "")).origin).toBe("https://upstream.test");
  });

  it.each(["/../admin", "/%2e%2e/admin", "/.%2E/admin", "/x/../../admin"])(
    "refuses a path that climbs out: %s",
    (path) => {
      expect(() => upstreamUrl(config, path, "")).toThrow("request path is not a valid OpenAI API path");
    },
  );
});

describe("upstreamHeaders", () => {
  it("drops hop-by-hop and length headers and sets the key", () => {
    const headers = upstreamHeaders(
      config,
      new Headers({
        connection: "keep-alive",
        "content-length": "5",
        "accept-encoding": "br",
        "sec-fetch-mode": "cors",
        accept: "text/event-stream",
      }),
    );
    expect([...headers.keys()].sort()).toEqual(["accept", "authorization"]);
    expect(headers.get("authorization")).toBe("Bearer sk-unit");
  });
});
