import type { Env } from "../env";
import { type AuthSettings, parseAuthSettings } from "./auth";
import { type KeyLimits, parseKeyLimits } from "./key-limits";
import { type OriginPolicy, parseOrigins } from "./origins";
import { compilePatterns } from "./patterns";
import { type Price, parseModelPrices } from "./prices";

export { type AuthSettings, JWT_SHAPE, type KeyDigest } from "./auth";
export type { KeyLimits } from "./key-limits";
export { isOriginAllowed, isSerializedOrigin, type OriginPolicy } from "./origins";
export { compilePatterns, matchesAny } from "./patterns";
export { PRICE_TABLE, type Price, parseModelPrices, priceFor } from "./prices";

/** Where requests go and how long the proxy waits for them. */
export type UpstreamSettings = {
  /** `undefined` only when `errors` explains why. */
  apiKey: string | undefined;
  organization: string | undefined;
  project: string | undefined;
  /** Upstream base URL without a trailing slash, e.g. `https://api.openai.com/v1`. */
  baseUrl: string;
  /** Origin of `baseUrl`, which every upstream URL must keep. */
  baseOrigin: string;
  /** Path of `baseUrl` without a trailing slash (`/v1`), under which every upstream URL must stay. */
  basePath: string;
  /** No response headers within this many milliseconds: 504. */
  timeoutMs: number;
  /** A stream that upstream leaves silent this long is ended with an SSE error event. */
  streamIdleTimeoutMs: number;
  /** Ask chat and completions streams for their usage (`stream_options.include_usage`) when the client did not. */
  includeStreamUsage: boolean;
};

/** `POST /`'s defaults, filled only where the client left a field out. */
export type SeedDefaults = { model: string; temperature: number; maxTokens: number };

/** What a client may ask for. */
export type PolicySettings = {
  /** `ALLOWED_MODELS` compiled; null allows every model. */
  allowedModels: RegExp[] | null;
  /** `ALLOWED_PATHS` compiled; null allows every `/v1/` path. */
  allowedPaths: RegExp[] | null;
  /** The paths `ALLOWED_PATHS` names as they are, without a wildcard. */
  namedPaths: ReadonlySet<string>;
  /** `MAX_OUTPUT_TOKENS`; null sets no cap. */
  maxOutputTokens: number | null;
};

/** Per-client limits, before a key's or a token's own overrides. */
export type LimitSettings = {
  /** Requests per minute per client; 0 is no limit. */
  rpm: number;
  /** Concurrent streams per client; 0 is no limit. */
  maxStreams: number;
  /** Tokens per client per UTC day; null is unlimited. */
  dailyTokenBudget: number | null;
  /** `PROXY_KEY_LIMITS`, by key name. */
  keyLimits: ReadonlyMap<string, KeyLimits>;
};

/** What the proxy records of each request. */
export type UsageSettings = {
  /** The price table, with `MODEL_PRICES` merged over it. */
  prices: ReadonlyMap<string, Price>;
  /** Write one JSON log line per request. */
  log: boolean;
  /** Write one usage record per request to the D1 ledger. */
  record: boolean;
};

/** Everything the proxy needs from `env`, parsed and checked once per isolate, in one slice per step. */
export type Config = {
  upstream: UpstreamSettings;
  cors: { origins: OriginPolicy };
  auth: AuthSettings;
  body: { maxBytes: number };
  seed: SeedDefaults;
  policy: PolicySettings;
  limits: LimitSettings;
  usage: UsageSettings;
  /** Every bad setting, by name. Non-empty means the proxy refuses to serve (except CORS and preflights). */
  errors: string[];
};

const DEFAULTS = {
  OPENAI_BASE_URL: "https://api.openai.com/v1",
  ALLOWED_ORIGINS: "*",
  DEFAULT_MODEL: "gpt-3.5-turbo",
  DEFAULT_TEMPERATURE: "0.7",
  DEFAULT_MAX_TOKENS: "1000",
  // Cloudflare accepts request bodies up to 100 MB on every plan; OpenAI accepts audio files of 25 MB
  // and image payloads of tens of MB (checked 2026-11-30).
  MAX_BODY_BYTES: String(100 * 1024 * 1024),
  // The official SDKs wait 10 minutes for an answer (openai-node's default timeout, 600 s).
  UPSTREAM_TIMEOUT_MS: "600000",
  STREAM_IDLE_TIMEOUT_MS: "300000",
  LOG_REQUESTS: "true",
  RATE_LIMIT_RPM: "60",
  MAX_CONCURRENT_STREAMS: "5",
  RECORD_USAGE: "true",
  INCLUDE_STREAM_USAGE: "true",
} as const;

type Setting = keyof typeof DEFAULTS;

/** Visible ASCII only: what an HTTP header value can carry without being refused or altered. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

const cache = new WeakMap<object, Config>();

/**
 * Parses `env` into a `Config`, reporting every bad setting at once in `errors`.
 * Results are cached per `env` object, so a request pays for this once per isolate.
 *
 * @example
 * const config = getConfig(env);
 * if (config.errors.length > 0) throw new ProxyError(500, `proxy is not configured: ${config.errors.join("; ")}`);
 */
export function getConfig(env: Env): Config {
  let config = cache.get(env);
  if (config === undefined) {
    config = parseConfig(env);
    cache.set(env, config);
  }
  return config;
}

/** Upstream settings with a key. */
export type ReadyUpstream = UpstreamSettings & { apiKey: string };

/** A `Config` without errors, so with a key. */
export type ReadyConfig = Config & { upstream: ReadyUpstream };

/** Whether the proxy may serve with this configuration. */
export function isReady(config: Config): config is ReadyConfig {
  return config.errors.length === 0 && config.upstream.apiKey !== undefined;
}

/** Parses `env` into a `Config` without caching. */
export function parseConfig(env: Env): Config {
  const errors: string[] = [];
  const vars = env as unknown as Record<string, unknown>;
  const optional = (name: string): string | undefined => {
    const value = vars[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  };
  const setting = (name: Setting): string => optional(name) ?? DEFAULTS[name];
  const number = (name: Setting, check: (n: number) => boolean, rule: string): number => {
    const raw = setting(name);
    const value = Number(raw);
    if (!Number.isFinite(value) || !check(value)) {
      errors.push(`${name} must be ${rule} (got "${raw}")`);
      return Number(DEFAULTS[name]);
    }
    return value;
  };
  const positiveInteger = (n: number) => Number.isInteger(n) && n > 0;
  const wholeNumber = (n: number) => Number.isInteger(n) && n >= 0;
  const flag = (name: Setting): boolean => {
    const raw = setting(name).toLowerCase();
    if (raw === "true" || raw === "false") return raw === "true";
    errors.push(`${name} must be true or false (got "${raw}")`);
    return DEFAULTS[name] === "true";
  };
  const secret = (name: "OPENAI_API_KEY" | "OPENAI_ORGANIZATION" | "OPENAI_PROJECT"): string | undefined => {
    const value = env[name]?.trim() || undefined;
    // Never echo the value: it is a secret.
    if (value !== undefined && !HEADER_SAFE.test(value)) {
      errors.push(`${name} contains characters that cannot be sent in a header`);
    }
    return value;
  };
  const optionalPositive = (name: string): number | null => {
    const raw = optional(name);
    if (raw === undefined) return null;
    const value = Number(raw);
    if (Number.isSafeInteger(value) && value > 0) return value;
    errors.push(`${name} must be a positive integer or empty (got "${raw}")`);
    return null;
  };
  /** Errors of a sub-parser, each prefixed with the setting's name unless it already names it. */
  const report = (name: string, found: readonly string[]) => {
    errors.push(...found.map((e) => (e.startsWith(name) ? e : `${name}: ${e}`)));
  };

  const prices = parseModelPrices(optional("MODEL_PRICES"));
  report("MODEL_PRICES", prices.errors);
  const auth = parseAuthSettings(env);
  errors.push(...auth.errors);
  const keyLimits = parseKeyLimits(optional("PROXY_KEY_LIMITS"));
  report("PROXY_KEY_LIMITS", keyLimits.errors);
  for (const name of keyLimits.limits.keys()) {
    if (!auth.settings.keys.has(name)) {
      errors.push(`PROXY_KEY_LIMITS names "${name}", which is not a key in PROXY_KEYS`);
    }
  }

  const apiKey = secret("OPENAI_API_KEY");
  if (apiKey === undefined) errors.push("OPENAI_API_KEY is not set");

  const base = parseBaseUrl(setting("OPENAI_BASE_URL"));
  if (typeof base === "string") errors.push(base);
  const baseUrl = new URL(typeof base === "string" ? DEFAULTS.OPENAI_BASE_URL : base.href.replace(/\/+$/, ""));

  const origins = parseOrigins(setting("ALLOWED_ORIGINS"));
  report("ALLOWED_ORIGINS", origins.errors);

  return {
    upstream: {
      apiKey,
      organization: secret("OPENAI_ORGANIZATION"),
      project: secret("OPENAI_PROJECT"),
      baseUrl: baseUrl.href.replace(/\/+$/, ""),
      baseOrigin: baseUrl.origin,
      basePath: baseUrl.pathname.replace(/\/+$/, ""),
      timeoutMs: number("UPSTREAM_TIMEOUT_MS", positiveInteger, "a positive integer"),
      streamIdleTimeoutMs: number("STREAM_IDLE_TIMEOUT_MS", positiveInteger, "a positive integer"),
      includeStreamUsage: flag("INCLUDE_STREAM_USAGE"),
    },
    cors: { origins: origins.policy },
    auth: auth.settings,
    body: { maxBytes: number("MAX_BODY_BYTES", positiveInteger, "a positive integer") },
    seed: {
      model: setting("DEFAULT_MODEL"),
      temperature: number("DEFAULT_TEMPERATURE", (n) => n >= 0 && n <= 2, "a number from 0 to 2"),
      maxTokens: number("DEFAULT_MAX_TOKENS", positiveInteger, "a positive integer"),
    },
    policy: {
      allowedModels: compilePatterns(optional("ALLOWED_MODELS")),
      allowedPaths: compilePatterns(optional("ALLOWED_PATHS")),
      namedPaths: new Set(
        (optional("ALLOWED_PATHS") ?? "")
          .split(",")
          .map((entry) => entry.trim())
          .filter((entry) => entry !== "" && !entry.includes("*")),
      ),
      maxOutputTokens: optionalPositive("MAX_OUTPUT_TOKENS"),
    },
    limits: {
      rpm: number("RATE_LIMIT_RPM", wholeNumber, "a whole number (0 for no limit)"),
      maxStreams: number("MAX_CONCURRENT_STREAMS", wholeNumber, "a whole number (0 for no limit)"),
      dailyTokenBudget: optionalPositive("DAILY_TOKEN_BUDGET"),
      keyLimits: keyLimits.limits,
    },
    usage: { prices: prices.prices, log: flag("LOG_REQUESTS"), record: flag("RECORD_USAGE") },
    errors,
  };
}

function parseBaseUrl(raw: string): URL | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "OPENAI_BASE_URL must be an absolute http(s) URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return `OPENAI_BASE_URL must use http or https (got "${url.protocol}")`;
  }
  if (url.username || url.password || url.search || url.hash) {
    return "OPENAI_BASE_URL must not contain credentials, a query or a fragment";
  }
  return url;
}
