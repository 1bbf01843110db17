import { describe, expect, it } from "vitest";
import type { Upstream } from "../config";
import { parseUpstreams } from "../config/upstreams";
import { upstreamHeaders, upstreamUrl } from "./upstream";

const SECRETS = { KEY: "sk-unit-0123456789", AZ: "az-unit-0123456789" };
const [openai, azure, azureV1] = parseUpstreams(
  JSON.stringify([
    { name: "compat", base_url: "https://upstream.test/v1", keys: ["KEY"], headers: { "x-provider": "p" } },
    {
      name: "azure",
      kind: "azure",
      base_url: "https://r.openai.azure.com",
      keys: ["AZ"],
      api_version: "2024-10-21",
      deployments: { "gpt-4o": "big-one" },
      models: ["gpt-4o", "gpt-4o-mini"],
    },
    { name: "v1", kind: "azure", base_url: "https://r.openai.azure.com", keys: ["AZ"] },
  ]),
  SECRETS,
).upstreams as [Upstream, Upstream, Upstream];

describe("upstreamUrl", () => {
  it("appends the path and query to an OpenAI-compatible base URL", () => {
    expect(upstreamUrl(openai, "/files/file-1/content", "?a=1&b=%20")).toBe(
      "https://upstream.test/v1/files/file-1/content?a=1&b=%20",
    );
  });

  it("keeps percent-encoding in the path", () => {
    expect(upstreamUrl(openai, "/files/a%2Fb", "")).toBe("https://upstream.test/v1/files/a%2Fb");
  });

  it("sends an Azure model to its deployment, with the upstream's api-version in place of the client's", () => {
    expect(upstreamUrl(azure, "/chat/completions", "?api-version=1999-01-01&x=1", "gpt-4o")).toBe(
      "https://r.openai.azure.com/openai/deployments/big-one/chat/completions?x=1&api-version=2024-10-21",
    );
    // A model served without a deployment of its own is deployed under its name.
    expect(upstreamUrl(azure, "/embeddings", "", "gpt-4o-mini")).toBe(
      "https://r.openai.azure.com/openai/deployments/gpt-4o-mini/embeddings?api-version=2024-10-21",
    );
    // Paths Azure serves per resource.
    expect(upstreamUrl(azure, "/files", "", null)).toBe(
      "https://r.openai.azure.com/openai/files?api-version=2024-10-21",
    );
    expect(upstreamUrl(azure, "/responses", "", "gpt-4o")).toBe(
      "https://r.openai.azure.com/openai/responses?api-version=2024-10-21",
    );
  });

  it("never lets a client name an Azure deployment, in its path or its query", () => {
    for (const path of [
      "/deployments/other/chat/completions",
      "/deployments",
      "/Deployments/x/embeddings",
      "/deployments%2Fx",
    ]) {
      expect(() => upstreamUrl(azure, path, "", "gpt-4o"), path).toThrow("request path is not a valid OpenAI API path");
      expect(() => upstreamUrl(azureV1, path, "", "gpt-4o"), path).toThrow(
        "request path is not a valid OpenAI API path",
      );
    }
    expect(upstreamUrl(azure, "/realtime", "?model=gpt-4o&deployment=other&api-version=x&q=a%20b", "gpt-4o")).toBe(
      "https://r.openai.azure.com/openai/realtime?model=gpt-4o&q=a%20b&api-version=2024-10-21&deployment=big-one",
    );
  });

  it("uses Azure's v1 API when no deployments are named", () => {
    expect(upstreamUrl(azureV1, "/chat/completions", "", "gpt-4o")).toBe(
      "https://r.openai.azure.com/openai/v1/chat/completions",
    );
  });

  it.each(["//evil.test/x", "/\\\\evil.test/x", "/@evil.test"])("stays on the base origin for %s", (path) => {
    for (const upstream of [openai, azure, azureV1]) {
      expect(new URL(upstreamUrl(upstream, path, "", "gpt-4o")).origin).toBe(upstream.baseOrigin);
    }
  });

  it.each(["/../admin", "/%2e%2e/admin", "/.%2E/admin", "/x/../../admin"])(
    "refuses a path that climbs out: %s",
    (path) => {
      for (const upstream of [openai, azureV1]) {
        expect(() => upstreamUrl(upstream, path, "")).toThrow("request path is not a valid OpenAI API path");
      }
    },
  );
});

describe("upstreamHeaders", () => {
  it("drops hop-by-hop and length headers, and sends a Bearer key and the upstream's headers", () => {
    const headers = upstreamHeaders(
      openai,
      SECRETS.KEY,
      new Headers({
        connection: "keep-alive",
        "content-length": "5",
        "accept-encoding": "br",
        "sec-fetch-mode": "cors",
        accept: "text/event-stream",
        authorization: "Bearer client-credential",
      }),
    );
    expect([...headers.keys()].sort()).toEqual(["accept", "authorization", "x-provider"]);
    expect(headers.get("authorization")).toBe(`Bearer ${SECRETS.KEY}`);
  });

  it("sends an Azure key as api-key, never the client's", () => {
    const headers = upstreamHeaders(
      azure,
      SECRETS.AZ,
      new Headers({ "api-key": "client-key", authorization: "Bearer c" }),
    );
    expect(headers.get("api-key")).toBe(SECRETS.AZ);
    expect(headers.has("authorization")).toBe(false);
  });
});
