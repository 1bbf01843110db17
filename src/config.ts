import type { Env } from "./env";
import { type OriginPolicy, parseOrigins } from "./middleware/cors/origins";

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

  const secret = (name: "OPENAI_API_KEY" | "OPENAI_ORGANIZATION" | "OPENAI_PROJECT"): string | undefined => {
    const value = env[name]?.trim() || undefined;
    // Never echo the value: it is a secret.
    if (value !== undefined && !HEADER_SAFE.test(value))
      errors.push(`${name} contains characters that cannot be sent in a header`);
    return value;
  };
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
