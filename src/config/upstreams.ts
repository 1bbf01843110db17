import { VISIBLE_ASCII } from "../lib/bytes";
import { isRecord } from "../lib/json";
import { compilePatterns } from "./patterns";

/** How an upstream is spoken to: `openai`, any OpenAI-compatible API (Bearer key); `azure`, Azure OpenAI (`api-key`). */
export type UpstreamKind = "openai" | "azure";

/** One upstream: where requests for its models go, and with which keys. Operator config only. */
export type Upstream = {
  name: string;
  kind: UpstreamKind;
  /**
   * Where its URLs begin, without a trailing slash: the API base for `openai`
   * (`https://api.deepseek.com/v1`), `<endpoint>/openai` for Azure deployments, `<endpoint>/openai/v1`
   * for Azure's v1 API.
   */
  baseUrl: string;
  /** Origin of `baseUrl`, which every URL must keep. */
  baseOrigin: string;
  /** Path of `baseUrl`, under which every URL must stay. */
  basePath: string;
  /** Its keys, in the order they are used in turn (the values of the secrets `keys` names). */
  keys: readonly string[];
  /** The models it serves, as patterns; null serves any model. */
  models: readonly RegExp[] | null;
  /** The models it names without a wildcard, for `GET /v1/models`. */
  modelNames: readonly string[];
  /** Its share of the requests among upstreams that serve the same model. */
  weight: number;
  /** Extra headers sent with every request (an organization, a project, a provider's own). */
  headers: Readonly<Record<string, string>>;
  /** The proxy may add `stream_options.include_usage` to its chat and completions streams. */
  includeStreamUsage: boolean;
  /** Azure's `api-version` and model → deployment map; null for `openai`, or for Azure's v1 API without deployments. */
  azure: { apiVersion: string | null; deployments: ReadonlyMap<string, string> | null } | null;
};

/** Upstream fields `UPSTREAMS` accepts; any other is reported, so that a typo is never silently ignored. */
const FIELDS = new Set([
  "name",
  "kind",
  "base_url",
  "keys",
  "models",
  "weight",
  "headers",
  "include_stream_usage",
  "api_version",
  "deployments",
]);

/** Headers the proxy sets itself, which an upstream's `headers` may not. */
const RESERVED_HEADERS = new Set(["authorization", "api-key", "host", "content-length", "cookie", "transfer-encoding"]);

const HEADER_VALUE = /^[\x20-\x7e]*$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Parses `UPSTREAMS`, a JSON array of upstreams, reporting every bad field by its place
 * (`UPSTREAMS[1].base_url: …`). Keys are read from the secrets each upstream's `keys` names, never
 * from the JSON itself, and never echoed.
 *
 * @example
 * parseUpstreams('[{"name":"openai","base_url":"https://api.openai.com/v1","keys":["OPENAI_API_KEY"]}]', env);
 */
export function parseUpstreams(
  raw: string,
  secrets: Readonly<Record<string, unknown>>,
): { upstreams: Upstream[]; errors: string[] } {
  const errors: string[] = [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { upstreams: [], errors: ["UPSTREAMS must be a JSON array of upstreams (see the README)"] };
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    return { upstreams: [], errors: ["UPSTREAMS must be a non-empty JSON array of upstreams"] };
  }
  const upstreams: Upstream[] = [];
  const names = new Set<string>();
  parsed.forEach((entry, index) => {
    const upstream = parseUpstream(entry, `UPSTREAMS[${index}]`, secrets, errors);
    if (upstream === null) return;
    if (names.has(upstream.name)) errors.push(`UPSTREAMS[${index}].name: "${upstream.name}" is used twice`);
    names.add(upstream.name);
    upstreams.push(upstream);
  });
  return { upstreams, errors };
}

function parseUpstream(
  entry: unknown,
  at: string,
  secrets: Readonly<Record<string, unknown>>,
  errors: string[],
): Upstream | null {
  if (!isRecord(entry)) {
    errors.push(`${at} must be an object`);
    return null;
  }
  const before = errors.length;
  const fail = (field: string, message: string) => errors.push(`${at}.${field}: ${message}`);
  for (const field of Object.keys(entry)) if (!FIELDS.has(field)) fail(field, "is not a field of an upstream");

  const name = typeof entry.name === "string" && NAME.test(entry.name) ? entry.name : null;
  if (name === null) fail("name", "must be a short name of letters, digits, '.', '_' or '-'");
  if (entry.kind !== undefined && entry.kind !== "openai" && entry.kind !== "azure") {
    fail("kind", 'must be "openai" or "azure"');
  }
  const kind: UpstreamKind = entry.kind === "azure" ? "azure" : "openai";

  const base = parseBase(entry.base_url, kind === "azure");
  if (typeof base === "string") fail("base_url", base);

  const keys: string[] = [];
  if (!Array.isArray(entry.keys) || entry.keys.length === 0) {
    fail("keys", 'must name the secrets that hold its keys, e.g. ["OPENAI_API_KEY"]');
  } else {
    for (const [i, secretName] of (entry.keys as unknown[]).entries()) {
      if (typeof secretName !== "string" || !SECRET_NAME.test(secretName)) {
        fail(`keys[${i}]`, "must be the name of a Worker secret");
        continue;
      }
      const value = secrets[secretName];
      const key = typeof value === "string" ? value.trim() : "";
      // Never the value: it is a secret.
      if (key === "") fail(`keys[${i}]`, `the secret ${secretName} is not set`);
      else if (!VISIBLE_ASCII.test(key)) fail(`keys[${i}]`, `the secret ${secretName} cannot be sent in a header`);
      else keys.push(key);
    }
  }

  let deployments: Map<string, string> | null = null;
  let apiVersion: string | null = null;
  if (kind === "azure") {
    if (entry.deployments !== undefined) {
      if (!isRecord(entry.deployments) || Object.keys(entry.deployments).length === 0) {
        fail("deployments", 'must map model names to deployment names, e.g. {"gpt-4o-mini": "my-mini"}');
      } else {
        deployments = new Map();
        for (const [model, deployment] of Object.entries(entry.deployments)) {
          if (typeof deployment !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(deployment)) {
            fail(`deployments.${model}`, "must be a deployment name");
          } else deployments.set(model, deployment);
        }
      }
    }
    if (entry.api_version !== undefined) {
      if (typeof entry.api_version !== "string" || !/^[\w.-]+$/.test(entry.api_version)) {
        fail("api_version", 'must be an Azure api-version, e.g. "2024-10-21"');
      } else apiVersion = entry.api_version;
    }
    if (deployments !== null && apiVersion === null) {
      fail("api_version", "is required with deployments (Azure's deployment API needs an api-version)");
    }
  } else {
    if (entry.deployments !== undefined) fail("deployments", 'is for kind "azure" only');
    if (entry.api_version !== undefined) fail("api_version", 'is for kind "azure" only');
  }

  let models: RegExp[] | null = null;
  let modelNames: string[] = [];
  if (entry.models !== undefined) {
    const list = Array.isArray(entry.models) ? entry.models : null;
    if (list === null || list.length === 0 || list.some((m) => typeof m !== "string" || m.trim() === "")) {
      fail("models", 'must be a list of model names or patterns, e.g. ["gpt-4o-mini", "gpt-4.1*"]');
    } else {
      models = compilePatterns(list as string[]);
      modelNames = (list as string[]).filter((m) => !m.includes("*"));
    }
  } else if (deployments !== null) {
    // An Azure resource serves the models it has deployments for.
    modelNames = [...deployments.keys()];
    models = compilePatterns(modelNames);
  }

  let weight = 1;
  if (entry.weight !== undefined) {
    if (typeof entry.weight !== "number" || !Number.isFinite(entry.weight) || entry.weight <= 0) {
      fail("weight", "must be a positive number");
    } else weight = entry.weight;
  }

  const headers: Record<string, string> = {};
  if (entry.headers !== undefined) {
    if (!isRecord(entry.headers)) fail("headers", "must be an object of header names and values");
    else {
      for (const [header, value] of Object.entries(entry.headers)) {
        const lower = header.toLowerCase();
        if (!TOKEN.test(header)) fail(`headers.${header}`, "is not a header name");
        else if (RESERVED_HEADERS.has(lower)) fail(`headers.${header}`, "is set by the proxy itself");
        else if (typeof value !== "string" || !HEADER_VALUE.test(value))
          fail(`headers.${header}`, "must be a printable string");
        else headers[lower] = value;
      }
    }
  }

  let includeStreamUsage = true;
  if (entry.include_stream_usage !== undefined) {
    if (typeof entry.include_stream_usage !== "boolean") fail("include_stream_usage", "must be true or false");
    else includeStreamUsage = entry.include_stream_usage;
  }

  if (errors.length > before || name === null || typeof base === "string") return null;
  const prefix =
    kind === "azure" ? (deployments === null ? "/openai/v1" : "/openai") : base.pathname.replace(/\/+$/, "");
  return {
    name,
    kind,
    baseUrl: base.origin + prefix,
    baseOrigin: base.origin,
    basePath: prefix,
    keys,
    models,
    modelNames,
    weight,
    headers,
    includeStreamUsage,
    azure: kind === "azure" ? { apiVersion, deployments } : null,
  };
}

/** An upstream's `base_url`; for Azure, the resource endpoint itself (no path). */
function parseBase(raw: unknown, azure: boolean): URL | string {
  const example = azure ? "https://<resource>.openai.azure.com" : "https://api.example.com/v1";
  if (typeof raw !== "string") return `must be an absolute https URL, e.g. ${example}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `must be an absolute https URL, e.g. ${example}`;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must use https (or http for a local server)";
  if (url.username || url.password || url.search || url.hash)
    return "must not contain credentials, a query or a fragment";
  if (azure && url.pathname.replace(/\/+$/, "") !== "") {
    return `is the Azure resource endpoint, without a path, e.g. ${example}`;
  }
  return url;
}

/**
 * Parses `MODEL_ALIASES`, a JSON object mapping a name clients send to the model it stands for
 * (`{"fast": "gpt-4o-mini"}`). An alias of an alias is refused: aliases are resolved once.
 *
 * @example
 * parseModelAliases('{"fast":"gpt-4o-mini"}').aliases.get("fast"); // "gpt-4o-mini"
 */
export function parseModelAliases(raw: string | undefined): { aliases: ReadonlyMap<string, string>; errors: string[] } {
  const aliases = new Map<string, string>();
  if (raw === undefined) return { aliases, errors: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { aliases, errors: ['MODEL_ALIASES must be a JSON object, e.g. {"fast": "gpt-4o-mini"}'] };
  }
  if (!isRecord(parsed))
    return { aliases, errors: ['MODEL_ALIASES must be a JSON object, e.g. {"fast": "gpt-4o-mini"}'] };
  const errors: string[] = [];
  for (const [alias, model] of Object.entries(parsed)) {
    if (typeof model !== "string" || model.trim() === "" || alias.trim() === "") {
      errors.push(`MODEL_ALIASES.${alias}: must name a model`);
    } else if (Object.hasOwn(parsed, model)) {
      errors.push(`MODEL_ALIASES.${alias}: "${model}" is itself an alias; name the model it stands for`);
    } else aliases.set(alias, model);
  }
  return { aliases, errors };
}
