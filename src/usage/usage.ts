/** Token counts of one request, in the names the ledger uses whatever the endpoint called them. */
export type Usage = {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
};

/**
 * Usage from a non-streaming OpenAI response body (already parsed JSON): chat.completion and
 * text_completion (`usage.prompt_tokens`, `completion_tokens`, `total_tokens`,
 * `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`), embeddings
 * (`prompt_tokens`, `total_tokens`), responses (`usage.input_tokens`, `output_tokens`, `total_tokens`,
 * `input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`). The Responses
 * shape also covers the token-billed image and transcription endpoints. Missing details count 0; a
 * missing total is the sum; a body without usable usage (no usage, counts that are not
 * non-negative integers) gives null. Never throws.
 *
 * @example
 * usageFromBody(await response.json()); // { promptTokens: 12, completionTokens: 5, totalTokens: 17, cachedTokens: 0, reasoningTokens: 0 }
 */
export function usageFromBody(body: unknown): Usage | null {
  try {
    const usage = isRecord(body) ? body.usage : undefined;
    if (!isRecord(usage)) return null;
    const responses = usage.input_tokens !== undefined;
    const prompt = count(responses ? usage.input_tokens : usage.prompt_tokens);
    if (prompt === null) return null;
    const completion = count(responses ? usage.output_tokens : usage.completion_tokens);
    const promptDetails = responses ? usage.input_tokens_details : usage.prompt_tokens_details;
    const completionDetails = responses ? usage.output_tokens_details : usage.completion_tokens_details;
    return {
      promptTokens: prompt,
      completionTokens: completion ?? 0,
      totalTokens: count(usage.total_tokens) ?? prompt + (completion ?? 0),
      cachedTokens: (isRecord(promptDetails) && count(promptDetails.cached_tokens)) || 0,
      reasoningTokens: (isRecord(completionDetails) && count(completionDetails.reasoning_tokens)) || 0,
    };
  } catch {
    // Only a hostile object (a throwing getter) gets here; parsed JSON never does.
    return null;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function count(value: unknown): number | null {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : null;
}
