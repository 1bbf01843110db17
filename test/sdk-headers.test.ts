import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/wrangler-dev";
import { EXPOSED_HEADERS, isPassed, PROXY_HEADERS, SAFELISTED_HEADERS } from "../src/proxy/client-headers";

/** The SDKs the README promises work through the proxy. */
const SDKS = ["openai", "@ai-sdk/openai", "@ai-sdk/provider-utils", "ai", "@langchain/openai", "@langchain/core"];
/** Headers the SDKs read from what they send or from their own config, never from a response. */
const REQUEST_ONLY = new Set(["authorization", "cookie", "if-match", "user-agent"]);

/** Every header name the SDKs' published JavaScript reads: `headers.get("…")`, `headers["…"]`. */
function headersTheSdksRead(): Set<string> {
  const names = new Set<string>();
  const read =
    /[hH]eaders(?:\?\.|\.)get\(\s*['"]([A-Za-z0-9-]+)['"]\s*\)|[hH]eaders\??\.?\[\s*['"]([A-Za-z0-9-]+)['"]\s*\]/g;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (entry === "node_modules" || entry === "src") continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(c|m)?js$/.test(entry)) {
        for (const match of readFileSync(path, "utf8").matchAll(read))
          names.add((match[1] ?? match[2] ?? "").toLowerCase());
      }
    }
  };
  for (const sdk of SDKS) walk(join(ROOT, "node_modules", sdk));
  return names;
}

describe("the headers the official SDKs act on", () => {
  const read = headersTheSdksRead();
  const responseHeaders = [...read].filter((name) => !REQUEST_ONLY.has(name));

  it("are found in the SDKs' code", () => {
    // The ones the retry logic of the openai SDK and the AI SDK depends on.
    for (const name of ["x-should-retry", "retry-after", "retry-after-ms", "x-request-id"])
      expect(read).toContain(name);
  });

  it("reach a page in another origin: passed on or set by the proxy, and exposed", () => {
    const exposed = new Set(EXPOSED_HEADERS.split(", "));
    const proxySets = new Set<string>(PROXY_HEADERS);
    const missing = responseHeaders.filter(
      (name) =>
        !(isPassed(name) || proxySets.has(name) || name === "content-length") ||
        !(exposed.has(name) || SAFELISTED_HEADERS.has(name)),
    );
    expect(missing).toEqual([]);
  });
});
