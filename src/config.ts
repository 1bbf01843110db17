import type { Env } from "./env";
import { type KeyLimits, parseKeyLimits } from "./limits/key-limits";
import { type AuthSettings, parseAuthSettings } from "./middleware/client-auth";
import { type OriginPolicy, parseOrigins } from "./middleware/cors/origins";
import { compilePatterns } from "./middleware/policy/patterns";
import { type Price, parseModelPrices } from "./usage/prices";

/** Everything the proxy needs from `env`, parsed and checked once per isolate. */
export type Config = {
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
  origins: OriginPolicy;
  defaultModel: string;
  defaultTemperature: number;
  defaultMaxTokens: number;
  maxBodyBytes: number;
  upstreamTimeoutMs: number;
  /** A stream that upstream leaves silent this long is ended with an SSE error event. */
  streamIdleTimeoutMs: number;
  /** Write one JSON log line per request. */
  logRequests: boolean;
  /** Who may call: static client keys, signed tokens, both, or anyone (open mode, limited per IP). */
  auth: AuthSettings;
  /** Requests per minute per client, unless a key's or token's own limit says otherwise; 0 is no limit. */
  rateLimitRpm: number;
  /** Concurrent streams per client, unless a key's own limit says otherwise; 0 is no limit. */
  maxConcurrentStreams: number;
  /** Write one usage record per request to the D1 ledger. */
  recordUsage: boolean;
  /** Tokens per client per UTC day, unless a key's or token's own budget says otherwise; null is unlimited. */
  dailyTokenBudget: number | null;
  /** `PROXY_KEY_LIMITS`, by key name. */
  keyLimits: ReadonlyMap<string, KeyLimits>;
  /** `ALLOWED_MODELS` compiled; null allows every model. */
  allowedModels: RegExp[] | null;
  /** `MAX_OUTPUT_TOKENS`; null sets no cap. */
  maxOutputTokens: number | null;
  /** `ALLOWED_PATHS` compiled; null allows every `/v1/` path. */
  allowedPaths: RegExp[] | null;
  /** The price table, with `MODEL_PRICES` merged over it. */
  prices: ReadonlyMap<string, Price>;
  /** Every bad setting, by name. Non-empty means the proxy refuses to serve (except CORS and preflights). */
  errors: string[];
};

const DEFAULTS = {
  OPENAI_BASE_URL: "https://api.openai.com/v1",
  ALLOWED_ORIGINS: "*",
  DEFAULT_MODEL: "gpt-3.5-turbo",
  DEFAULT_TEMPERATURE: "0.7",
  DEFAULT_MAX_TOKENS: "1000",
  MAX_BODY_BYTES: String(10 * 1024 * 1024),
  UPSTREAM_TIMEOUT_MS: "120000",
  STREAM_IDLE_TIMEOUT_MS: "300000",
  LOG_REQUESTS: "true",
  RATE_LIMIT_RPM: "60",
  MAX_CONCURRENT_STREAMS: "5",
  RECORD_USAGE: "true",
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

/** A `Config` without errors, so with a key. */
export type ReadyConfig = Config & { apiKey: string };

/** Whether the proxy may serve with this configuration. */
export function isReady(config: Config): config is ReadyConfig {
  return config.errors.length === 0 && config.apiKey !== undefined;
}

/** Parses `env` into a `Config` without caching. */
export function parseConfig(env: Env): Config {
  const errors: string[] = [];
  const setting = (name: Setting): string => {
    const value = (env as unknown as Record<string, unknown>)[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : DEFAULTS[name];
  };
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
    if (value !== undefined && !HEADER_SAFE.test(value))
      errors.push(`${name} contains characters that cannot be sent in a header`);
    return value;
  };
  const optional = (name: string): string | undefined => {
    const value = (env as unknown as Record<string, unknown>)[name];
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
  };
  const optionalPositive = (name: string): number | null => {
    const raw = optional(name);
    if (raw === undefined) return null;
    const value = Number(raw);
    if (Number.isInteger(value) && value > 0) return value;
    errors.push(`${name} must be a positive integer or empty (got "${raw}")`);
    return null;
  };
  const prices = parseModelPrices(optional("MODEL_PRICES"));
  errors.push(...prices.errors.map((e) => (e.startsWith("MODEL_PRICES") ? e : `MODEL_PRICES: ${e}`)));
  const auth = parseAuthSettings(env);
  errors.push(...auth.errors);
  const keyLimits = parseKeyLimits(optional("PROXY_KEY_LIMITS"));
  errors.push(...keyLimits.errors.map((e) => (e.startsWith("PROXY_KEY_LIMITS") ? e : `PROXY_KEY_LIMITS: ${e}`)));
  for (const name of keyLimits.limits.keys()) {
    if (!auth.settings.keys.has(name))
      errors.push(`PROXY_KEY_LIMITS names "${name}", which is not a key in PROXY_KEYS`);
  }

  const apiKey = secret("OPENAI_API_KEY");
  if (apiKey === undefined) errors.push("OPENAI_API_KEY is not set");

  const base = parseBaseUrl(setting("OPENAI_BASE_URL"));
  if (typeof base === "string") errors.push(base);
  const baseUrl = typeof base === "string" ? DEFAULTS.OPENAI_BASE_URL : base.href.replace(/\/+$/, "");

  const origins = parseOrigins(setting("ALLOWED_ORIGINS"));
  if (origins.errors.length > 0) errors.push(...origins.errors.map((e) => `ALLOWED_ORIGINS: ${e}`));

  return {
    apiKey,
    organization: secret("OPENAI_ORGANIZATION"),
    project: secret("OPENAI_PROJECT"),
    baseUrl,
    baseOrigin: new URL(baseUrl).origin,
    basePath: new URL(baseUrl).pathname.replace(/\/+$/, ""),
    origins: origins.policy,
    defaultModel: setting("DEFAULT_MODEL"),
    defaultTemperature: number("DEFAULT_TEMPERATURE", (n) => n >= 0 && n <= 2, "a number from 0 to 2"),
    defaultMaxTokens: number("DEFAULT_MAX_TOKENS", positiveInteger, "a positive integer"),
    maxBodyBytes: number("MAX_BODY_BYTES", positiveInteger, "a positive integer"),
    upstreamTimeoutMs: number("UPSTREAM_TIMEOUT_MS", positiveInteger, "a positive integer"),
    streamIdleTimeoutMs: number("STREAM_IDLE_TIMEOUT_MS", positiveInteger, "a positive integer"),
    logRequests: flag("LOG_REQUESTS"),
    auth: auth.settings,
    rateLimitRpm: number("RATE_LIMIT_RPM", wholeNumber, "a whole number (0 for no limit)"),
    maxConcurrentStreams: number("MAX_CONCURRENT_STREAMS", wholeNumber, "a whole number (0 for no limit)"),
    recordUsage: flag("RECORD_USAGE"),
    keyLimits: keyLimits.limits,
    allowedModels: compilePatterns(optional("ALLOWED_MODELS")),
    maxOutputTokens: optionalPositive("MAX_OUTPUT_TOKENS"),
    dailyTokenBudget: optionalPositive("DAILY_TOKEN_BUDGET"),
    allowedPaths: compilePatterns(optional("ALLOWED_PATHS")),
    prices: prices.prices,
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
