import { isRecord } from "../lib/json";

/**
 * Token counts of one request, in the names the ledger uses whatever the endpoint called them.
 * The details are parts of the totals: `cachedTokens`, `audioInputTokens` and `imageInputTokens`
 * of `promptTokens`; `reasoningTokens`, `audioOutputTokens` and `imageOutputTokens` of
 * `completionTokens`.
 */
export type Usage = {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  audioInputTokens: number;
  imageInputTokens: number;
  audioOutputTokens: number;
  imageOutputTokens: number;
};

/**
 * Audio tokens a minute of audio billed by duration counts as: whisper-1 costs $0.006 a minute
 * (OpenAI's pricing, checked 2026-11-30), which the price table bills as 1,000 tokens at $6 per
 * million, as gpt-4o-transcribe bills about the same audio.
 */
export const DURATION_TOKENS_PER_MINUTE = 1000;

/**
 * Usage from an OpenAI `usage` object's owner (a parsed response body or SSE event), whatever the
 * endpoint:
 * - chat.completion and text_completion: `prompt_tokens`, `completion_tokens`, `total_tokens`,
 *   `prompt_tokens_details.{cached_tokens,audio_tokens}`,
 *   `completion_tokens_details.{reasoning_tokens,audio_tokens}`; embeddings: `prompt_tokens` only;
 * - responses, images (gpt-image-1) and transcriptions (gpt-4o-transcribe), the Realtime API's
 *   `response.done`: `input_tokens`, `output_tokens`, `total_tokens`, with details under
 *   `input_tokens_details` (responses, images) or `input_token_details` (transcriptions,
 *   Realtime): `cached_tokens`, `audio_tokens`, `image_tokens`; and under
 *   `output_tokens_details`/`output_token_details`: `reasoning_tokens`, `audio_tokens`,
 *   `image_tokens`.
 *
 * - a transcription billed by the minute (whisper-1: `{"type":"duration","seconds":…}`): its seconds
 *   as audio input tokens, `DURATION_TOKENS_PER_MINUTE` a minute, the rate the price table bills
 *   whisper-1's minutes at.
 *
 * Missing details count 0; a missing total is the sum; a body without usable usage (no `usage`,
 * counts that are not non-negative integers, seconds that are not a non-negative number) gives null. Never throws.
 *
 * @example
 * usageFromBody(await response.json()); // { promptTokens: 12, completionTokens: 5, totalTokens: 17, cachedTokens: 0, … }
 */
export function usageFromBody(body: unknown): Usage | null {
  try {
    return isRecord(body) ? readUsage(body.usage) : null;
  } catch {
    // Only a hostile object (a throwing getter) gets here; parsed JSON never does.
    return null;
  }
}

/**
 * Usage from a `usage` object itself (see `usageFromBody`).
 *
 * @example
 * readUsage({ input_tokens: 10, output_tokens: 2 }); // { promptTokens: 10, completionTokens: 2, totalTokens: 12, … }
 */
export function readUsage(usage: unknown): Usage | null {
  if (!isRecord(usage)) return null;
  if (usage.type === "duration") {
    const seconds = usage.seconds;
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return null;
    const tokens = Math.ceil((seconds * DURATION_TOKENS_PER_MINUTE) / 60);
    return { ...plainUsage(tokens, 0), audioInputTokens: tokens };
  }
  const tokensShape = usage.input_tokens !== undefined;
  const prompt = count(tokensShape ? usage.input_tokens : usage.prompt_tokens);
  if (prompt === null) return null;
  const completion = count(tokensShape ? usage.output_tokens : usage.completion_tokens) ?? 0;
  const input = tokensShape ? (usage.input_tokens_details ?? usage.input_token_details) : usage.prompt_tokens_details;
  const output = tokensShape
    ? (usage.output_tokens_details ?? usage.output_token_details)
    : usage.completion_tokens_details;
  return {
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: count(usage.total_tokens) ?? prompt + completion,
    cachedTokens: detail(input, "cached_tokens", prompt),
    reasoningTokens: detail(output, "reasoning_tokens", completion),
    audioInputTokens: detail(input, "audio_tokens", prompt),
    imageInputTokens: detail(input, "image_tokens", prompt),
    audioOutputTokens: detail(output, "audio_tokens", completion),
    imageOutputTokens: detail(output, "image_tokens", completion),
  };
}

/**
 * Adds two usages, field by field: a Realtime session's responses, or the tries of one request.
 *
 * @example
 * addUsage(first, second).totalTokens === first.totalTokens + second.totalTokens; // true
 */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
    reasoningTokens: a.reasoningTokens + b.reasoningTokens,
    audioInputTokens: a.audioInputTokens + b.audioInputTokens,
    imageInputTokens: a.imageInputTokens + b.imageInputTokens,
    audioOutputTokens: a.audioOutputTokens + b.audioOutputTokens,
    imageOutputTokens: a.imageOutputTokens + b.imageOutputTokens,
  };
}

/** A usage of `input` prompt and `output` completion tokens without details: what an estimate is. */
export function plainUsage(input: number, output: number): Usage {
  return {
    promptTokens: input,
    completionTokens: output,
    totalTokens: input + output,
    cachedTokens: 0,
    reasoningTokens: 0,
    audioInputTokens: 0,
    imageInputTokens: 0,
    audioOutputTokens: 0,
    imageOutputTokens: 0,
  };
}

/** A detail count, 0 when missing or malformed, never more than the total it is part of. */
function detail(details: unknown, field: string, total: number): number {
  if (!isRecord(details)) return 0;
  return Math.min(count(details[field]) ?? 0, total);
}

function count(value: unknown): number | null {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : null;
}
