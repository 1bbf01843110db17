import type { Context, MiddlewareHandler } from "hono";
import { ProxyError } from "../../errors";
import type { AppEnv } from "../../types";
import { requestJson } from "../body-limit";
import { compilePatterns, matchesAny } from "./patterns";

/** Reasoning models (fine-tunes of them too) take `max_completion_tokens`, not `max_tokens`, and no `temperature`. */
export const REASONING_MODEL = /^(ft:)?(o\d|gpt-5)/;
const OUTPUT_FIELDS = ["max_tokens", "max_completion_tokens", "max_output_tokens"] as const;

/**
 * What a client may ask for on `/v1/*`: `ALLOWED_PATHS` (403 `path_not_allowed`), then the model
 * and output rules of `enforceRequestPolicy`. `POST /` applies those itself, after its defaults.
 *
 * @example
 * app.on(["GET", "POST", "DELETE"], "/v1/*", configured(), bodyLimit(), clientAuth(), rateLimit(), policy(), openaiPassThrough);
 */
export function policy(): MiddlewareHandler<AppEnv> {
  return async function policyMiddleware(c, next) {
    checkPath(c, c.req.path);
    const json = requestJson(c);
    if (json !== undefined && enforceRequestPolicy(c, json, c.req.path.slice("/v1".length))) {
      c.set("body", encoder.encode(JSON.stringify(json)));
    }
    await next();
  };
}

/** Refuses a path that `ALLOWED_PATHS` leaves out, with 403 `path_not_allowed`. */
export function checkPath(c: Context<AppEnv>, path: string): void {
  const { allowedPaths } = c.get("config");
  if (allowedPaths !== null && !matchesAny(allowedPaths, path)) {
    throw new ProxyError(403, `${c.req.method} ${c.req.path} is not enabled on this proxy`, {
      type: "permission_error",
      code: "path_not_allowed",
    });
  }
}

const encoder = new TextEncoder();
const tokenPatterns = new WeakMap<readonly string[], RegExp[]>();

/**
 * Applies `ALLOWED_MODELS` and a token's `models` claim (403 `model_not_allowed`, naming the
 * model, not the list), and `MAX_OUTPUT_TOKENS` (400 over the cap; a request without a cap gets
 * one, in the field the endpoint and model expect) to a JSON request for `path` (below `/v1`).
 * Returns whether `json` was changed, so that only a changed body is re-serialised.
 */
export function enforceRequestPolicy(c: Context<AppEnv>, json: Record<string, unknown>, path: string): boolean {
  const { allowedModels, maxOutputTokens } = c.get("config");
  const model = typeof json.model === "string" ? json.model : undefined;
  if (model !== undefined) {
    if (allowedModels !== null && !matchesAny(allowedModels, model)) throw modelNotAllowed(model);
    const claim = c.get("client")?.models;
    if (claim !== undefined) {
      let patterns = tokenPatterns.get(claim);
      if (patterns === undefined) {
        patterns = compilePatterns(claim) ?? [];
        tokenPatterns.set(claim, patterns);
      }
      if (!matchesAny(patterns, model)) throw modelNotAllowed(model);
    }
  }
  return maxOutputTokens !== null && capOutput(json, path, maxOutputTokens);
}

function modelNotAllowed(model: string): ProxyError {
  return new ProxyError(403, `model ${model} is not allowed on this proxy`, {
    type: "permission_error",
    code: "model_not_allowed",
    param: "model",
  });
}

/**
 * Holds a request body to `cap` output tokens. Throws 400 when it asks for more; when it names no
 * limit on an endpoint that generates text, sets one. Returns whether the body changed.
 */
export function capOutput(json: Record<string, unknown>, path: string, cap: number): boolean {
  for (const field of OUTPUT_FIELDS) {
    const value = json[field];
    if (typeof value === "number" && value > cap) {
      throw new ProxyError(400, `${field} is ${value}, over this proxy's cap of ${cap} output tokens`, {
        code: "max_tokens_over_cap",
        param: field,
      });
    }
  }
  if (OUTPUT_FIELDS.some((field) => typeof json[field] === "number")) return false;
  const field = outputField(path, typeof json.model === "string" ? json.model : "");
  if (field === null) return false;
  json[field] = cap;
  return true;
}

function outputField(path: string, model: string): (typeof OUTPUT_FIELDS)[number] | null {
  if (path === "/responses") return "max_output_tokens";
  if (path === "/completions") return "max_tokens";
  if (path === "/chat/completions") return REASONING_MODEL.test(model) ? "max_completion_tokens" : "max_tokens";
  return null;
}

export { compilePatterns, matchesAny } from "./patterns";
