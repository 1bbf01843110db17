import type { Context } from "hono";
import type { Config } from "../config";
import { ProxyError } from "../errors";
import { requestJson } from "../middleware/body-limit";
import { checkPath, enforceRequestPolicy, REASONING_MODEL } from "../middleware/policy";
import { forward } from "../proxy/forward";
import type { AppEnv } from "../types";
import { parseJsonObject } from "./json";
import { askForUsage } from "./usage-option";

/**
 * Fills the seed's defaults into a chat request, only where the client left a field out:
 * `model`, then `temperature` and `max_tokens` unless the model is a reasoning model
 * (or the client set `max_completion_tokens`, which `max_tokens` would conflict with).
 *
 * @example
 * withDefaults({ messages }, config) // { model: "gpt-3.5-turbo", messages, temperature: 0.7, max_tokens: 1000 }
 */
export function withDefaults(request: Record<string, unknown>, config: Config): Record<string, unknown> {
  const body: Record<string, unknown> = { model: config.defaultModel, ...request };
  const model = typeof body.model === "string" ? body.model : "";
  if (REASONING_MODEL.test(model)) return body;
  if (!("temperature" in body)) body.temperature = config.defaultTemperature;
  if (!("max_tokens" in body) && !("max_completion_tokens" in body)) {
    body.max_tokens = Math.min(config.defaultMaxTokens, config.maxOutputTokens ?? Number.POSITIVE_INFINITY);
  }
  return body;
}

/**
 * `POST /`: the seed's chat-completions endpoint. Takes a JSON object with a non-empty
 * `messages` array, fills the seed's defaults and forwards it to `/chat/completions`.
 */
export async function seedChat(c: Context<AppEnv>): Promise<Response> {
  const config = c.get("config");
  const contentType = c.req.header("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new ProxyError(
      415,
      `content type must be application/json (got ${contentType ? `"${contentType}"` : "none"})`,
      {
        code: "unsupported_media_type",
      },
    );
  }
  const bytes = c.get("body");
  // bodyLimit reads JSON bodies into memory; parseJsonObject says precisely what is wrong with anything else.
  const request = requestJson(c) ?? parseJsonObject(bytes instanceof Uint8Array ? bytes : null);
  if (!Array.isArray(request.messages) || request.messages.length === 0) {
    throw new ProxyError(400, "messages must be a non-empty array of chat messages", {
      code: "invalid_messages",
      param: "messages",
    });
  }
  checkPath(c, "/v1/chat/completions");
  const body = withDefaults(request, config);
  enforceRequestPolicy(c, body, "/chat/completions");
  const dropUsageChunk = askForUsage(body);
  const info = c.get("info");
  info.model = typeof body.model === "string" ? body.model : undefined;
  return forward(
    config,
    {
      method: "POST",
      path: "/chat/completions",
      search: "",
      headers: c.req.raw.headers,
      body: JSON.stringify(body),
      shape: "seed",
      account: true,
      dropUsageChunk,
    },
    c.req.raw.signal,
    info,
  );
}
