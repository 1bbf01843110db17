import { startsWithAt } from "../lib/bytes";
import type { JsonObject } from "../lib/json-object";
import type { Billing, Reservation } from "./spend";

/** Reasoning models (fine-tunes of them too): they take `max_completion_tokens`, and think before they answer. */
export const REASONING_MODEL = /^(ft:)?(o\d|gpt-5)/;

/**
 * Output tokens reserved for a request that names no cap of its own, and the cap the proxy sends
 * with it while a budget or the spend ceiling applies (and no `MAX_OUTPUT_TOKENS`): 4,096 for
 * chat models, 32,768 for reasoning models, whose hidden reasoning counts against the cap (OpenAI's
 * reasoning guide advises leaving room for at least 25,000, checked 2026-11-30).
 *
 * @example
 * defaultOutputCap("gpt-4o-mini"); // 4096
 * defaultOutputCap("o4-mini"); // 32768
 */
export function defaultOutputCap(model: string | null): number {
  return model !== null && REASONING_MODEL.test(model) ? REASONING_OUTPUT_RESERVATION : DEFAULT_OUTPUT_RESERVATION;
}

/** Output tokens reserved for a chat model's request that names no cap (see `defaultOutputCap`). */
export const DEFAULT_OUTPUT_RESERVATION = 4096;

/** Output tokens reserved for a reasoning model's request that names no cap (see `defaultOutputCap`). */
export const REASONING_OUTPUT_RESERVATION = 32_768;

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
 * Input tokens of one image, at most, however large its bytes or however short its URL: about the
 * most a single image costs on current vision models (gpt-4.1-mini's 1,536 patches × 1.62, OpenAI's
 * vision guide, checked 2026-11-30).
 */
export const IMAGE_INPUT_TOKENS = 2500;

/**
 * Input tokens reserved for a file a request names by id or URL (a PDF, say), which the proxy cannot
 * see: about a 10-page PDF's text and page images. A larger file spends more, settled afterwards.
 */
export const FILE_INPUT_TOKENS = 25_000;

/**
 * Input tokens reserved for context that upstream adds from its own storage, which the proxy cannot
 * see: a Responses `previous_response_id` or `conversation`, a stored `prompt`. A longer context
 * spends more, settled afterwards.
 */
export const STORED_CONTEXT_TOKENS = 100_000;

/**
 * Bytes of an upload (multipart audio or images) per input token reserved: speech at 8 kbit/s, the
 * lowest bitrate worth sending, is 1 KB a second, and OpenAI's audio models bill about 1,000
 * tokens a minute (gpt-4o-transcribe at $6 per million audio tokens, about $0.006 a minute).
 */
export const UPLOAD_BYTES_PER_TOKEN = 60;

/** Endpoints (below `/v1`) whose POSTs bill tokens, and where their output reservation comes from. */
const TOKEN_ENDPOINTS: ReadonlyMap<string, "cap" | "cap-per-choice" | "images" | "speech" | "fixed" | "none"> = new Map(
  [
    ["/chat/completions", "cap-per-choice"],
    ["/completions", "cap-per-choice"],
    ["/responses", "cap"],
    ["/embeddings", "none"],
    ["/images/generations", "images"],
    ["/images/edits", "images"],
    ["/images/variations", "images"],
    ["/audio/speech", "speech"],
    ["/audio/transcriptions", "fixed"],
    ["/audio/translations", "fixed"],
  ],
);

/**
 * Speech output tokens per input byte, at most: gpt-4o-mini-tts bills about 1,250 audio tokens a
 * minute ($12 per million, about $0.015 a minute, OpenAI's pricing, checked 2026-11-30), and a
 * minute of speech is about 900 characters; two tokens a byte leaves room for slow voices.
 */
const SPEECH_TOKENS_PER_BYTE = 2;

/** Audio tokens of one upload at most, however low its bitrate: an hour at about 1,000 tokens a minute. */
export const AUDIO_INPUT_MAX_TOKENS = 60_000;

/** The fields a request names its output cap in, by endpoint family. */
export const OUTPUT_FIELDS = ["max_tokens", "max_completion_tokens", "max_output_tokens"] as const;

/**
 * POSTs that bill nothing: uploads and storage (files, uploads, vector stores), moderation,
 * conversations, counting input tokens, cancelling a response, updating a stored completion. Their
 * answers may repeat a usage already billed (a cancelled response, an updated completion): it is not
 * charged again. Any other POST that is not a token-billed endpoint may spend where the proxy cannot
 * see it (batches, fine-tuning, assistants runs, evals, containers, videos, and paths added later).
 */
const FREE_POSTS = [
  /^\/files$/,
  /^\/uploads(\/.*)?$/,
  /^\/vector_stores(\/.*)?$/,
  /^\/moderations$/,
  /^\/conversations(\/.*)?$/,
  /^\/responses\/input_tokens$/,
  /^\/responses\/[^/]+\/cancel$/,
  /^\/chat\/completions\/[^/]+$/,
];

/**
 * How a request to `endpoint` (below `/v1`) can be billed: reads, deletes and the POSTs that bill
 * nothing (`FREE_POSTS`) are free, POSTs to the token-billed endpoints bill `tokens`, and any other
 * POST costs what its answer `reported`.
 *
 * @example
 * billingOf("POST", "/chat/completions"); // "tokens"
 * billingOf("GET", "/responses/resp_123"); // "free"
 * billingOf("POST", "/responses/resp_123/cancel"); // "free"
 */
export function billingOf(method: string, endpoint: string): Billing {
  if (method !== "POST") return "free";
  // A token-billed endpoint (most POSTs) is one lookup; no free POST is one of them.
  if (TOKEN_ENDPOINTS.has(endpoint)) return "tokens";
  return FREE_POSTS.some((free) => free.test(endpoint)) ? "free" : "reported";
}

/** Whether the endpoint generates text whose length a request caps with one of `OUTPUT_FIELDS`. */
export function capsOutput(endpoint: string): boolean {
  const rule = TOKEN_ENDPOINTS.get(endpoint);
  return rule === "cap" || rule === "cap-per-choice";
}

/**
 * What a token-billed request may spend at most, for budgets: its input at most plus the output
 * it may generate: its cap (`cap`, the one it names or the one the proxy set; the default when
 * neither: `defaultOutputCap`) times its choices `n`; for images, what `n` images of its quality and size cost; for
 * audio, a fixed default.
 *
 * @example
 * reservationFor("/chat/completions", { input: { ceiling: 48, estimate: 12 }, cap: 500, fields: { n: 2 } }); // { inputTokens: 48, inputEstimate: 12, outputTokens: 1000 }
 */
export function reservationFor(
  endpoint: string,
  request: {
    input: { ceiling: number; estimate: number };
    cap: number | null;
    model?: string | null;
    fields: Readonly<Record<string, unknown>>;
  },
): Reservation {
  const rule = TOKEN_ENDPOINTS.get(endpoint);
  const { fields } = request;
  const cap = request.cap ?? defaultOutputCap(request.model ?? null);
  const count = (value: unknown) =>
    typeof value === "number" && Number.isFinite(value) && value > 1 ? Math.ceil(value) : 1;
  // Each prompt of a list (legacy completions) gets its own choices; best_of generates more than it returns.
  const choices = Math.max(count(fields.n), count(fields.best_of)) * count(fields.prompts);
  const n = count(fields.n);
  const outputTokens =
    rule === "cap-per-choice"
      ? cap * choices
      : rule === "cap"
        ? cap
        : rule === "images"
          ? imageOutputTokens({ quality: fields.quality, size: fields.size, n, partialImages: fields.partial_images })
          : rule === "speech"
            ? Math.max(256, SPEECH_TOKENS_PER_BYTE * request.input.ceiling)
            : rule === "fixed"
              ? DEFAULT_OUTPUT_RESERVATION
              : 0;
  return { inputTokens: request.input.ceiling, inputEstimate: request.input.estimate, outputTokens };
}

const BASE64 = /^[A-Za-z0-9+/=_-]*$/;
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const IMAGE_KEYS = ["image_url", "input_image"].map((key) => encoder.encode(`"${key}"`));
const FILE_KEYS = ["file_id", "file_url"].map((key) => encoder.encode(`"${key}"`));
const STORED_CONTEXT = ["previous_response_id", "conversation", "prompt"];

/**
 * Whether the body's top-level `key` names context upstream keeps: any `previous_response_id` or
 * `conversation`; a `prompt` only as an object (a stored prompt's id), not as the text or token
 * list that completions and images take.
 */
function namesStoredContext(json: JsonObject, key: string): boolean {
  const span = json.members.get(key);
  if (span === undefined) return false;
  return key !== "prompt" || json.bytes[span[0]] === 0x7b;
}

/**
 * A JSON request's input tokens: `ceiling`, what they can be at most, which budgets and the spend
 * ceiling reserve; `estimate`, what they likely are, which a cut stream is charged. By what each
 * part of the body is, not by what it looks like:
 * - text, anywhere: at most one token per byte (every token is at least one byte), likely one per four;
 * - an image (an `image_url` or `input_image`, a URL or a base64 `data:image/…` under `url` or
 *   `image_url`): at most `IMAGE_INPUT_TOKENS`, whatever its bytes;
 * - inline audio (base64 under `data`): one token per `UPLOAD_BYTES_PER_TOKEN` bytes;
 * - an inline file (base64 under `file_data`): one token per four bytes; a file named by id or URL:
 *   `FILE_INPUT_TOKENS`;
 * - stored context the request names (`previous_response_id`, `conversation`, a stored `prompt`):
 *   `STORED_CONTEXT_TOKENS`.
 * A long string that only looks like base64 but stands anywhere else counts as text.
 *
 * @example
 * jsonInputTokens(readJsonObject(bytes)); // { ceiling: bytes.byteLength, estimate: bytes.byteLength / 4 } for text
 */
export function jsonInputTokens(json: JsonObject): { ceiling: number; estimate: number } {
  const { bytes } = json;
  let textBytes = bytes.byteLength;
  let payloadTokens = 0;
  for (const { start, end, key } of json.largeStrings) {
    const size = end - start;
    const tokens = payloadTokensOf(bytes, start, end, key);
    if (tokens === null) continue;
    textBytes -= size;
    payloadTokens += tokens;
  }
  const [images = 0, files = 0] = keyCounts(bytes, [IMAGE_KEYS, FILE_KEYS]);
  const stored = STORED_CONTEXT.some((key) => namesStoredContext(json, key)) ? STORED_CONTEXT_TOKENS : 0;
  const attached = payloadTokens + images * IMAGE_INPUT_TOKENS + files * FILE_INPUT_TOKENS + stored;
  return { ceiling: textBytes + attached, estimate: Math.ceil(textBytes / 4) + attached };
}

/**
 * What a long base64 string costs by what it is (its key says), beyond the image it may stand for
 * (counted by key elsewhere); null when it is text: not base64, or under no key that takes a payload.
 */
function payloadTokensOf(bytes: Uint8Array, start: number, end: number, key: string | null): number | null {
  const head = decoder.decode(bytes.subarray(start, Math.min(end, start + 256)));
  const image = (key === "url" || key === "image_url") && head.startsWith("data:image/");
  const audio = key === "data";
  const file = key === "file_data";
  if (!image && !audio && !file) return null;
  const payloadAt = head.startsWith("data:") ? start + head.indexOf(",") + 1 : start;
  if (!isBase64(bytes.subarray(payloadAt, end))) return null;
  if (image) return 0;
  return Math.ceil((end - start) / (audio ? UPLOAD_BYTES_PER_TOKEN : 4));
}

/**
 * Whether bytes are base64 throughout: checked natively for what base64 never holds (a space, a
 * backslash escape, a quote), and byte by byte at the start and the end.
 */
function isBase64(bytes: Uint8Array): boolean {
  if (bytes.indexOf(0x20) !== -1 || bytes.indexOf(0x5c) !== -1) return false;
  const edge = (part: Uint8Array) => BASE64.test(decoder.decode(part));
  return edge(bytes.subarray(0, 256)) && edge(bytes.subarray(Math.max(0, bytes.byteLength - 256)));
}

/**
 * How many times each group of `keys` (quoted, so each begins with `"`) stands as a key in
 * `bytes`: followed, past spaces, by a colon. One pass over the body's quotes for every group.
 */
function keyCounts(bytes: Uint8Array, groups: readonly (readonly Uint8Array[])[]): number[] {
  const counts = groups.map(() => 0);
  for (let at = bytes.indexOf(0x22); at !== -1; at = bytes.indexOf(0x22, at + 1)) {
    for (let group = 0; group < groups.length; group++) {
      for (const key of groups[group] ?? []) {
        if (!startsWithAt(bytes, at, key)) continue;
        let next = at + key.length;
        while (bytes[next] === 0x20 || bytes[next] === 0x0a || bytes[next] === 0x0d || bytes[next] === 0x09) next++;
        if (bytes[next] === 0x3a) counts[group] = (counts[group] ?? 0) + 1;
      }
    }
  }
  return counts;
}

/**
 * Input tokens of an upload (a multipart form) at most: for images (edits, variations),
 * `IMAGE_INPUT_TOKENS` a file plus its other bytes as text; for audio, one token per
 * `UPLOAD_BYTES_PER_TOKEN` bytes, at most `AUDIO_INPUT_MAX_TOKENS`.
 *
 * @example
 * uploadInputTokens("/audio/transcriptions", { bytes: 600_000, files: 1 }); // 10000
 */
export function uploadInputTokens(endpoint: string, upload: { bytes: number; files: number }): number {
  if (endpoint.startsWith("/images/")) return upload.files * IMAGE_INPUT_TOKENS + 1024;
  return Math.min(AUDIO_INPUT_MAX_TOKENS, Math.ceil(upload.bytes / UPLOAD_BYTES_PER_TOKEN));
}
