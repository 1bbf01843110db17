import type { Price } from "../config";
import type { Usage } from "./usage";

/**
 * The cost in USD of `usage` at `price` (USD per million tokens): cached input at the cached
 * price, audio and image input at theirs, the rest of the input at the text price; audio and
 * image output at theirs, the rest of the output (reasoning included) at the text output price.
 * Cached tokens are taken from the text input first.
 *
 * @example
 * costUsd(PRICE_TABLE.get("gpt-4o-mini"), plainUsage(1000, 200)); // (1000 × 0.15 + 200 × 0.6) / 1e6 = 0.00027
 */
export function costUsd(price: Price, usage: Usage): number {
  const audioIn = usage.audioInputTokens;
  const imageIn = Math.min(usage.imageInputTokens, usage.promptTokens - audioIn);
  const textIn = usage.promptTokens - audioIn - imageIn;
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  const cachedText = Math.min(cached, textIn);
  const cachedOther = cached - cachedText;
  const audioOut = usage.audioOutputTokens;
  const imageOut = Math.min(usage.imageOutputTokens, usage.completionTokens - audioOut);
  const textOut = usage.completionTokens - audioOut - imageOut;
  const micro =
    (textIn - cachedText) * price.input +
    cached * price.cachedInput +
    (audioIn - Math.min(cachedOther, audioIn)) * price.audioInput +
    (imageIn - Math.max(0, cachedOther - audioIn)) * price.imageInput +
    textOut * price.output +
    audioOut * price.audioOutput +
    imageOut * price.imageOutput;
  return micro / 1_000_000;
}
