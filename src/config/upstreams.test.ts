import { describe, expect, it } from "vitest";
import type { Env } from "../env";
import { isReady, parseConfig } from ".";
import { parseModelAliases, parseUpstreams } from "./upstreams";

const SECRETS = {
  OPENAI_API_KEY: "sk-one-0123456789",
  OPENAI_API_KEY_2: "sk-two-0123456789",
  AZURE_KEY: "az-key-0123456789",
};

const AZURE = {
  name: "azure",
  kind: "azure",
  base_url: "https://contoso.openai.azure.com",
  keys: ["AZURE_KEY"],
  api_version: "2024-10-21",
  deployments: { "gpt-4o-mini": "mini-prod", "gpt-4o": "big" },
};

describe("parseUpstreams", () => {
  it("reads OpenAI-compatible and Azure upstreams, keys from the secrets they name", () => {
    const { upstreams, errors } = parseUpstreams(
      JSON.stringify([
        {
          name: "openai",
          base_url: "https://api.openai.com/v1/",
          keys: ["OPENAI_API_KEY", "OPENAI_API_KEY_2"],
          models: ["gpt-4.1*", "o4-mini"],
          weight: 3,
          headers: { "OpenAI-Project": "proj_1" },
        },
        AZURE,
        { name: "azure-v1", kind: "azure", base_url: "https://fabrikam.openai.azure.com/", keys: ["AZURE_KEY"] },
      ]),
      SECRETS,
    );
    expect(errors).toEqual([]);
    expect(upstreams.map(({ models, ...rest }) => ({ ...rest, models: models?.length ?? null }))).toEqual([
      {
        name: "openai",
        kind: "openai",
        baseUrl: "https://api.openai.com/v1",
        baseOrigin: "https://api.openai.com",
        basePath: "/v1",
        keys: [SECRETS.OPENAI_API_KEY, SECRETS.OPENAI_API_KEY_2],
        models: 2,
        modelNames: ["o4-mini"],
        weight: 3,
        headers: { "openai-project": "proj_1" },
        includeStreamUsage: true,
        azure: null,
      },
      {
        name: "azure",
        kind: "azure",
        baseUrl: "https://contoso.openai.azure.com/openai",
        baseOrigin: "https://contoso.openai.azure.com",
        basePath: "/openai",
        keys: [SECRETS.AZURE_KEY],
        // An Azure resource serves the models it has deployments for.
        models: 2,
        modelNames: ["gpt-4o-mini", "gpt-4o"],
        weight: 1,
        headers: {},
        includeStreamUsage: true,
        azure: { apiVersion: "2024-10-21", deployments: new Map(Object.entries(AZURE.deployments)) },
      },
      {
        name: "azure-v1",
        kind: "azure",
        baseUrl: "https://fabrikam.openai.azure.com/openai/v1",
        baseOrigin: "https://fabrikam.openai.azure.com",
        basePath: "/openai/v1",
        keys: [SECRETS.AZURE_KEY],
        models: null,
        modelNames: [],
        weight: 1,
        headers: {},
        includeStreamUsage: true,
        azure: { apiVersion: null, deployments: null },
      },
    ]);
  });

  it("names every bad field at once, by its place, and never a key", () => {
    const { errors } = parseUpstreams(
      JSON.stringify([
        { name: "a", base_url: "ftp://x", keys: ["MISSING_KEY"], weight: 0, extra: 1 },
        { name: "a", kind: "gemini", base_url: "https://x.test/v1", keys: [] },
        {
          name: "az",
          kind: "azure",
          base_url: "https://r.openai.azure.com/openai",
          keys: ["AZURE_KEY"],
          deployments: { m: "d" },
        },
        {
          name: "h",
          base_url: "https://x.test/v1",
          keys: ["OPENAI_API_KEY"],
          headers: { Authorization: "x" },
          models: [],
        },
        "not an object",
      ]),
      SECRETS,
    );
    expect(errors).toEqual([
      "UPSTREAMS[0].extra: is not a field of an upstream",
      "UPSTREAMS[0].base_url: must use https (or http for a local server)",
      "UPSTREAMS[0].keys[0]: the secret MISSING_KEY is not set",
      "UPSTREAMS[0].weight: must be a positive number",
      'UPSTREAMS[1].kind: must be "openai" or "azure"',
      'UPSTREAMS[1].keys: must name the secrets that hold its keys, e.g. ["OPENAI_API_KEY"]',
      "UPSTREAMS[2].base_url: is the Azure resource endpoint, without a path, e.g. https://<resource>.openai.azure.com",
      "UPSTREAMS[2].api_version: is required with deployments (Azure's deployment API needs an api-version)",
      'UPSTREAMS[3].models: must be a list of model names or patterns, e.g. ["gpt-4o-mini", "gpt-4.1*"]',
      "UPSTREAMS[3].headers.Authorization: is set by the proxy itself",
      "UPSTREAMS[4] must be an object",
    ]);
    expect(errors.join()).not.toContain(SECRETS.OPENAI_API_KEY);
    expect(parseUpstreams("{", SECRETS).errors).toEqual([
      "UPSTREAMS must be a JSON array of upstreams (see the README)",
    ]);
    expect(parseUpstreams("[]", SECRETS).errors).toEqual(["UPSTREAMS must be a non-empty JSON array of upstreams"]);
  });

  it("reports a name used twice", () => {
    const one = { name: "x", base_url: "https://x.test/v1", keys: ["OPENAI_API_KEY"] };
    expect(parseUpstreams(JSON.stringify([one, one]), SECRETS).errors).toEqual([
      'UPSTREAMS[1].name: "x" is used twice',
    ]);
  });
});

describe("parseConfig with UPSTREAMS", () => {
  it("needs no OPENAI_API_KEY when the upstreams name their own keys, and reports their errors with the rest", () => {
    const config = parseConfig({
      ...SECRETS,
      OPENAI_API_KEY: undefined,
      UPSTREAMS: JSON.stringify([AZURE]),
      MODEL_ALIASES: '{"fast": "gpt-4o-mini"}',
      UPSTREAM_ATTEMPTS: "3",
    } as unknown as Env);
    expect(config.errors).toEqual([]);
    expect(isReady(config)).toBe(true);
    expect(config.upstream).toMatchObject({ configured: true, attempts: 3 });
    expect(config.upstream.aliases.get("fast")).toBe("gpt-4o-mini");
    const bad = parseConfig({ UPSTREAMS: "[", UPSTREAM_ATTEMPTS: "0" } as unknown as Env);
    expect(bad.errors).toEqual([
      "UPSTREAMS must be a JSON array of upstreams (see the README)",
      'UPSTREAM_ATTEMPTS must be a whole number from 1 to 10 (got "0")',
    ]);
    expect(isReady(bad)).toBe(false);
  });
});

describe("parseModelAliases", () => {
  it("maps names to models once, refusing an alias of an alias", () => {
    expect(parseModelAliases('{"fast":"gpt-4o-mini","smart":"o4-mini"}').errors).toEqual([]);
    expect(parseModelAliases('{"a":"b","b":"gpt-4o"}').errors).toEqual([
      'MODEL_ALIASES.a: "b" is itself an alias; name the model it stands for',
    ]);
    expect(parseModelAliases('{"a":""}').errors).toEqual(["MODEL_ALIASES.a: must name a model"]);
    expect(parseModelAliases("[1]").errors).toEqual([
      'MODEL_ALIASES must be a JSON object, e.g. {"fast": "gpt-4o-mini"}',
    ]);
  });
});
