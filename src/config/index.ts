import type { Env } from "../env";
import { VISIBLE_ASCII } from "../lib/bytes";
import { type AuthSettings, parseAuthSettings } from "./auth";
import { type KeyLimits, parseKeyLimits } from "./key-limits";
import { type OriginPolicy, parseOrigins } from "./origins";
import { compilePatterns } from "./patterns";
import { type Price, parseFallbackPrice, parseModelPrices } from "./prices";
import { parseModelAliases, parseUpstreams, type Upstream } from "./upstreams";

export { type AuthSettings, JWT_SHAPE, type KeyDigest } from "./auth";
export type { KeyLimits } from "./key-limits";
export { isOriginAllowed, isSerializedOrigin, type OriginPolicy } from "./origins";
export { compilePatterns, matchesAny } from "./patterns";
export { PRICE_TABLE, type Price, parseModelPrices, priceFor, TABLE_FALLBACK_PRICE } from "./prices";
export type { Upstream, UpstreamKind } from "./upstreams";

/** Where requests go and how long the proxy waits for them. */
export type UpstreamSettings = {
  /**
   * The upstreams, in order (the first serves paths that name no model): `UPSTREAMS`, or without it
   * one upstream named `openai` from `OPENAI_BASE_URL` and `OPENAI_API_KEY`.
   */
  upstreams: readonly Upstream[];
  /** `UPSTREAMS` is set. */
  configured: boolean;
  /** Every upstream's keys, for redacting upstream errors: worked out once, not per request. */
  secrets: readonly string[];
  /** `MODEL_ALIASES`: the model a client's name stands for. */
  aliases: ReadonlyMap<string, string>;
  /** `UPSTREAM_ATTEMPTS`: tries of one request in all, across keys and upstreams, before its first byte. */
  attempts: number;
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
  /** `ALLOWED_HOSTED_TOOLS`: hosted tools (billed per call, outside `usage`) allowed while spending is limited. */
  allowedHostedTools: readonly RegExp[];
};

/** Per-client limits, before a key's or a token's own overrides. */
export type LimitSettings = {
  /** Requests per minute per client; 0 is no limit. */
  rpm: number;
  /** Concurrent streams per client; 0 is no limit. */
  maxStreams: number;
  /** Tokens per client per UTC day; null is unlimited. */
  dailyTokenBudget: number | null;
  /** US dollars per client per UTC day (`DAILY_BUDGET_USD`); null is unlimited. */
  dailyBudgetUsd: number | null;
  /** `PROXY_KEY_LIMITS`, by key name. */
  keyLimits: ReadonlyMap<string, KeyLimits>;
};

/** What the whole proxy may spend (`DAILY_SPEND_LIMIT_USD`), held by one Durable Object and leased in slices. */
export type CeilingSettings = {
  /** US dollars per UTC day for all clients together; null is no ceiling. */
  dailyLimitUsd: number | null;
  /** How long an isolate holds a slice (of the ceiling, of a client's limits) before it returns what it did not use, in milliseconds. */
  leaseMs: number;
};

/** Sessions for anonymous visitors of a page with no backend, gated by Cloudflare Turnstile. */
export type SessionSettings = {
  /** Sessions are on: `TURNSTILE_SECRET_KEY` is set. */
  enabled: boolean;
  /** `TURNSTILE_SECRET_KEY`; undefined when sessions are off. */
  secret: string | undefined;
  /** Where tokens are verified: Cloudflare's siteverify, or a local stand-in in tests and the offline demo. */
  siteverifyUrl: string;
  /** `TURNSTILE_SITE_KEY`, the widget's public key, which `/health` tells pages; null when unset. */
  siteKey: string | null;
  /** The widget's `action` a token must carry; null accepts any. */
  action: string | null;
  /** A session token's lifetime, in seconds. */
  ttlSeconds: number;
  /** Requests per minute of each session. */
  rpm: number;
  /** US dollars per UTC day of each session. */
  dailyUsd: number;
  /** Sessions one client IP may mint per hour. */
  mintsPerHour: number;
};

/** What the proxy records of each request. */
export type UsageSettings = {
  /** The price table, with `MODEL_PRICES` merged over it. */
  prices: ReadonlyMap<string, Price>;
  /** Write one JSON log line per request. */
  log: boolean;
  /** Write one usage record per request to the D1 ledger. */
  record: boolean;
  /** What a model without a price is charged at (`FALLBACK_PRICE`): conservatively, the table's dearest rates. */
  fallbackPrice: Price;
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
  ceiling: CeilingSettings;
  sessions: SessionSettings;
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
  UPSTREAM_ATTEMPTS: "2",
  LOG_REQUESTS: "true",
  RATE_LIMIT_RPM: "60",
  MAX_CONCURRENT_STREAMS: "5",
  RECORD_USAGE: "true",
  INCLUDE_STREAM_USAGE: "true",
  SPEND_LEASE_SECONDS: "20",
  TURNSTILE_SITEVERIFY_URL: "https://challenges.cloudflare.com/turnstile/v0/siteverify",
  SESSION_TTL_SECONDS: "900",
  SESSION_RPM: "10",
  SESSION_DAILY_USD: "0.10",
  SESSION_MINTS_PER_HOUR: "10",
} as const;

type Setting = keyof typeof DEFAULTS;

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

/**
 * Whether the proxy may serve with this configuration: no errors (parsing reports an upstream
 * without a key, and a missing `OPENAI_API_KEY`, as errors).
 */
export function isReady(config: Config): boolean {
  return config.errors.length === 0;
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
    if (value !== undefined && !VISIBLE_ASCII.test(value)) {
      errors.push(`${name} contains characters that cannot be sent in a header`);
    }
    return value;
  };
  /** A positive number of US dollars, written plainly (`10`, `0.25`); null when it is not one. */
  const asDollars = (raw: string): number | null => (/^\d+(\.\d+)?$/.test(raw) && Number(raw) > 0 ? Number(raw) : null);
  const optionalDollars = (name: string): number | null => {
    const raw = optional(name);
    if (raw === undefined) return null;
    const value = asDollars(raw);
    if (value === null) errors.push(`${name} must be a positive number of US dollars or empty (got "${raw}")`);
    return value;
  };
  const dollars = (name: Setting): number => {
    const raw = setting(name);
    const value = asDollars(raw);
    if (value === null) errors.push(`${name} must be a positive number of US dollars (got "${raw}")`);
    return value ?? Number(DEFAULTS[name]);
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

  const includeStreamUsage = flag("INCLUDE_STREAM_USAGE");
  const allowedPaths = optional("ALLOWED_PATHS");
  const upstreamsRaw = optional("UPSTREAMS");
  let upstreams: Upstream[];
  if (upstreamsRaw !== undefined) {
    const parsed = parseUpstreams(upstreamsRaw, vars);
    errors.push(...parsed.errors);
    upstreams = parsed.upstreams;
  } else {
    // As before UPSTREAMS: one OpenAI-compatible upstream, OPENAI_BASE_URL with OPENAI_API_KEY.
    const apiKey = secret("OPENAI_API_KEY");
    if (apiKey === undefined) errors.push("OPENAI_API_KEY is not set");
    const base = parseBaseUrl(setting("OPENAI_BASE_URL"));
    if (typeof base === "string") errors.push(base);
    const baseUrl = new URL(typeof base === "string" ? DEFAULTS.OPENAI_BASE_URL : base.href.replace(/\/+$/, ""));
    const organization = secret("OPENAI_ORGANIZATION");
    const project = secret("OPENAI_PROJECT");
    upstreams = [
      {
        name: "openai",
        kind: "openai",
        baseUrl: baseUrl.href.replace(/\/+$/, ""),
        baseOrigin: baseUrl.origin,
        basePath: baseUrl.pathname.replace(/\/+$/, ""),
        keys: apiKey === undefined ? [] : [apiKey],
        models: null,
        modelNames: [],
        weight: 1,
        headers: {
          ...(organization === undefined ? {} : { "openai-organization": organization }),
          ...(project === undefined ? {} : { "openai-project": project }),
        },
        includeStreamUsage: true,
        azure: null,
      },
    ];
  }
  const aliases = parseModelAliases(optional("MODEL_ALIASES"));
  errors.push(...aliases.errors);

  const origins = parseOrigins(setting("ALLOWED_ORIGINS"));
  report("ALLOWED_ORIGINS", origins.errors);

  const fallback = parseFallbackPrice(optional("FALLBACK_PRICE"));
  errors.push(...fallback.errors);
  const turnstileSecret = optional("TURNSTILE_SECRET_KEY");
  const siteverify = parseHttpUrl("TURNSTILE_SITEVERIFY_URL", setting("TURNSTILE_SITEVERIFY_URL"));
  if (typeof siteverify === "string") errors.push(siteverify);
  if (turnstileSecret !== undefined) {
    // A session's token is only as safe as the page it is minted for: "any origin" would let any site mint one.
    if (origins.policy.any)
      errors.push("TURNSTILE_SECRET_KEY needs ALLOWED_ORIGINS to list your pages' origins, not *");
    if (auth.settings.jwtSecret === null && !auth.errors.some((e) => e.startsWith("PROXY_JWT_SECRET"))) {
      errors.push("TURNSTILE_SECRET_KEY needs PROXY_JWT_SECRET, which signs the session tokens");
    }
  }

  return {
    upstream: {
      upstreams,
      secrets: upstreams.flatMap((upstream) => upstream.keys),
      configured: upstreamsRaw !== undefined,
      aliases: aliases.aliases,
      attempts: number("UPSTREAM_ATTEMPTS", (n) => positiveInteger(n) && n <= 10, "a whole number from 1 to 10"),
      timeoutMs: number("UPSTREAM_TIMEOUT_MS", positiveInteger, "a positive integer"),
      streamIdleTimeoutMs: number("STREAM_IDLE_TIMEOUT_MS", positiveInteger, "a positive integer"),
      includeStreamUsage,
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
      allowedPaths: compilePatterns(allowedPaths),
      namedPaths: new Set(
        (allowedPaths ?? "")
          .split(",")
          .map((entry) => entry.trim())
          .filter((entry) => entry !== "" && !entry.includes("*")),
      ),
      maxOutputTokens: optionalPositive("MAX_OUTPUT_TOKENS"),
      // A name allows its dated and preview variants too: web_search allows web_search_preview_2025_03_11.
      allowedHostedTools:
        compilePatterns(
          (optional("ALLOWED_HOSTED_TOOLS") ?? "")
            .split(",")
            .map((name) => name.trim())
            .filter((name) => name !== "")
            .flatMap((name) => [name, `${name}_*`]),
        ) ?? [],
    },
    limits: {
      rpm: number("RATE_LIMIT_RPM", wholeNumber, "a whole number (0 for no limit)"),
      maxStreams: number("MAX_CONCURRENT_STREAMS", wholeNumber, "a whole number (0 for no limit)"),
      dailyTokenBudget: optionalPositive("DAILY_TOKEN_BUDGET"),
      dailyBudgetUsd: optionalDollars("DAILY_BUDGET_USD"),
      keyLimits: keyLimits.limits,
    },
    ceiling: {
      dailyLimitUsd: optionalDollars("DAILY_SPEND_LIMIT_USD"),
      leaseMs: number("SPEND_LEASE_SECONDS", (n) => n > 0 && n <= 25, "a number of seconds from above 0 to 25") * 1000,
    },
    sessions: {
      enabled: turnstileSecret !== undefined,
      secret: turnstileSecret,
      siteverifyUrl: typeof siteverify === "string" ? DEFAULTS.TURNSTILE_SITEVERIFY_URL : siteverify.href,
      siteKey: optional("TURNSTILE_SITE_KEY") ?? null,
      action: optional("TURNSTILE_ACTION") ?? null,
      ttlSeconds: number(
        "SESSION_TTL_SECONDS",
        (n) => positiveInteger(n) && n <= 86_400,
        "a whole number of seconds up to 86400",
      ),
      rpm: number("SESSION_RPM", positiveInteger, "a positive integer"),
      dailyUsd: dollars("SESSION_DAILY_USD"),
      mintsPerHour: number("SESSION_MINTS_PER_HOUR", positiveInteger, "a positive integer"),
    },
    usage: {
      prices: prices.prices,
      log: flag("LOG_REQUESTS"),
      record: flag("RECORD_USAGE"),
      fallbackPrice: fallback.price,
    },
    errors,
  };
}

/** An absolute http(s) URL, or the error naming `name`. */
function parseHttpUrl(name: string, raw: string): URL | string {
  try {
    const url = new URL(raw);
    if (url.protocol === "https:" || url.protocol === "http:") return url;
  } catch {
    // reported below
  }
  return `${name} must be an absolute http(s) URL`;
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
