import type { JsonObject } from "../lib/json-object";
import type { Billing, Reservation } from "./spend";

/**
 * Output tokens reserved for a request that names no cap of its own: the proxy's cap when it sends
 * one (with a budget and no `MAX_OUTPUT_TOKENS`), and the figure a request without any cap is
 * estimated at.
 */
export const DEFAULT_OUTPUT_RESERVATION = 4096;

/**
 * Output tokens of one generated image, by quality and size: gpt-image-1's figures from OpenAI's
 * image generation guide ("Cost and latency", checked 2026-11-30). `auto`, an unknown quality or
 * size, and other image models are reserved at the most the quality can cost.
 */
const IMAGE_OUTPUT_TOKENS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  low: { "1024x1024": 272, "1024x1536": 408, "1536x1024": 400 },
  medium: { "1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568 },
  high: { "1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208 },
};

/** Output tokens of one streamed partial image (`partial_images`), per the same guide. */
const PARTIAL_IMAGE_TOKENS = 100;

/**
 * The image output tokens a request for `n` images of `quality` and `size` may be billed, at most.
 *
 * @example
 * imageOutputTokens({ quality: "low", size: "1024x1024", n: 2 }); // 544
 * imageOutputTokens({ n: 1 }); // 6240: auto quality and size, reserved at their most
 */
export function imageOutputTokens(request: {
  quality?: unknown;
  size?: unknown;
  n?: unknown;
  partialImages?: unknown;
}): number {
  const byQuality = typeof request.quality === "string" ? IMAGE_OUTPUT_TOKENS[request.quality] : undefined;
  const sizes = byQuality ?? IMAGE_OUTPUT_TOKENS.high ?? {};
  const known = typeof request.size === "string" ? sizes[request.size] : undefined;
  const perImage = known ?? Math.max(...Object.values(sizes));
  const n = typeof request.n === "number" && request.n > 1 ? request.n : 1;
  const partials = typeof request.partialImages === "number" && request.partialImages > 0 ? request.partialImages : 0;
  return n * (perImage + partials * PARTIAL_IMAGE_TOKENS);
}

/**
 * Input tokens of one attachment (a base64 image, audio clip or file in a JSON body), however
 * large its bytes: about the most a single image costs on current vision models (gpt-4.1-mini's
 * 1,536 patches × 1.62, OpenAI's vision guide, checked 2026-11-30). Long audio and many-page files
 * can cost more; their real usage settles the difference.
 */
export const ATTACHMENT_TOKENS = 2500;

/**
 * Bytes of an upload (multipart audio or images) per input token reserved: speech at 8 kbit/s, the
 * lowest bitrate worth sending, is 1 KB a second, and OpenAI's audio models bill about 1,000
 * tokens a minute (gpt-4o-transcribe at $6 per million audio tokens, about $0.006 a minute).
 */
export const UPLOAD_BYTES_PER_TOKEN = 60;

/** Endpoints (below `/v1`) whose POSTs bill tokens, and where their output reservation comes from. */
const TOKEN_ENDPOINTS: ReadonlyMap<string, "cap" | "cap-per-choice" | "images" | "fixed" | "none"> = new Map([
  ["/chat/completions", "cap-per-choice"],
  ["/completions", "cap-per-choice"],
  ["/responses", "cap"],
  ["/embeddings", "none"],
  ["/images/generations", "images"],
  ["/images/edits", "images"],
  ["/images/variations", "images"],
  ["/audio/speech", "fixed"],
  ["/audio/transcriptions", "fixed"],
  ["/audio/translations", "fixed"],
]);

/** The fields a request names its output cap in, by endpoint family. */
export const OUTPUT_FIELDS = ["max_tokens", "max_completion_tokens", "max_output_tokens"] as const;

/**
 * How a request to `endpoint` (below `/v1`) can be billed: reads and deletes are free, POSTs to
 * the token-billed endpoints bill `tokens`, and any other POST costs what its answer `reported`.
 *
 * @example
 * billingOf("POST", "/chat/completions"); // "tokens"
 * billingOf("GET", "/responses/resp_123"); // "free"
 */
export function billingOf(method: string, endpoint: string): Billing {
  if (method !== "POST") return "free";
  return TOKEN_ENDPOINTS.has(endpoint) ? "tokens" : "reported";
}

/** Whether the endpoint generates text whose length a request caps with one of `OUTPUT_FIELDS`. */
export function capsOutput(endpoint: string): boolean {
  const rule = TOKEN_ENDPOINTS.get(endpoint);
  return rule === "cap" || rule === "cap-per-choice";
}

/**
 * What a token-billed request may spend at most, for budgets: its input estimate plus the output
 * it may generate: its cap (`cap`, the one it names or the one the proxy set; the default when
 * neither) times its choices `n`; for images, what `n` images of its quality and size cost; for
 * audio, a fixed default.
 *
 * @example
 * reservationFor("/chat/completions", { inputTokens: 12, cap: 500, fields: { n: 2 } }); // { inputTokens: 12, outputTokens: 1000 }
 */
export function reservationFor(
  endpoint: string,
  request: { inputTokens: number; cap: number | null; fields: Readonly<Record<string, unknown>> },
): Reservation {
  const rule = TOKEN_ENDPOINTS.get(endpoint);
  const { fields } = request;
  const cap = request.cap ?? DEFAULT_OUTPUT_RESERVATION;
  const n = typeof fields.n === "number" && fields.n > 1 ? fields.n : 1;
  const outputTokens =
    rule === "cap-per-choice"
      ? cap * n
      : rule === "cap"
        ? cap
        : rule === "images"
          ? imageOutputTokens({ quality: fields.quality, size: fields.size, n, partialImages: fields.partial_images })
          : rule === "fixed"
            ? DEFAULT_OUTPUT_RESERVATION
            : 0;
  return { inputTokens: request.inputTokens, outputTokens };
}

const BASE64 = /^[A-Za-z0-9+/=_-]*$/;
const decoder = new TextDecoder();

/**
 * Input tokens of a JSON request, estimated: about one per four bytes of text, with each
 * attachment (a string of `LARGE_STRING_BYTES` or more that is a `data:` URL or base64) counted at
 * `ATTACHMENT_TOKENS` instead of its bytes.
 *
 * @example
 * jsonInputTokens(readJsonObject(bytes)); // ≈ bytes.byteLength / 4
 */
export function jsonInputTokens(json: JsonObject): number {
  let textBytes = json.bytes.byteLength;
  let attachments = 0;
  for (const [start, end] of json.largeStrings) {
    const head = decoder.decode(json.bytes.subarray(start, Math.min(end, start + 256)));
    const payload = head.startsWith("data:") ? head.slice(head.indexOf(",") + 1) : head;
    if (!BASE64.test(payload)) continue;
    textBytes -= end - start;
    attachments++;
  }
  return Math.ceil(textBytes / 4) + attachments * ATTACHMENT_TOKENS;
}

/**
 * Input tokens of an upload of `bytes` (multipart audio, images): see `UPLOAD_BYTES_PER_TOKEN`.
 *
 * @example
 * uploadInputTokens(600_000); // 10000
 */
export function uploadInputTokens(bytes: number): number {
  return Math.ceil(bytes / UPLOAD_BYTES_PER_TOKEN);
}
