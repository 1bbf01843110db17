import { ASCII, concatBytes } from "../lib/bytes";
import { isRecord } from "../lib/json";
import { readUsage, type Usage } from "./usage";

const { QUOTE, BACKSLASH, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET, COLON, COMMA } = ASCII;
/** A `usage` object larger than this is not a usage object: stop holding it. */
const MAX_USAGE_BYTES = 64 * 1024;

const decoder = new TextDecoder();
const USAGE_KEY = "usage";
/**
 * A body up to this size is parsed whole, natively (for a typical answer of a few kilobytes, many
 * times faster than reading it byte by byte in JavaScript); a larger one is read as it passes.
 */
const WHOLE_BYTES = 256 * 1024;

/**
 * The top-level `usage` of a JSON response body, read to its end: parsed whole when it is small
 * (`WHOLE_BYTES`), else with a `JsonUsageReader` as it passes, holding nothing but the usage. Null
 * when there is none. Rejects when the stream errors (upstream broke off).
 *
 * @example
 * const [forClient, forUsage] = upstream.body.tee();
 * const usage = await readJsonUsage(forUsage); // { promptTokens: 12, … } or null
 */
export async function readJsonUsage(body: ReadableStream<Uint8Array>): Promise<Usage | null> {
  const reader = body.getReader();
  let chunks: Uint8Array[] = [];
  let size = 0;
  let passing: JsonUsageReader | null = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (passing !== null) {
      passing.push(value);
      continue;
    }
    // A copy: the chunk itself goes on to the client.
    chunks.push(value.slice());
    size += value.byteLength;
    if (size > WHOLE_BYTES) {
      passing = new JsonUsageReader();
      for (const chunk of chunks) passing.push(chunk);
      chunks = [];
    }
  }
  if (passing !== null) return passing.usage;
  try {
    const parsed: unknown = JSON.parse(decoder.decode(concatBytes(chunks)));
    return isRecord(parsed) && isRecord(parsed.usage) ? readUsage(parsed.usage) : null;
  } catch {
    // Not JSON as a whole (a body cut short): what reading it as it passes would have found.
    const fallback = new JsonUsageReader();
    for (const chunk of chunks) fallback.push(chunk);
    return fallback.usage;
  }
}

/**
 * Reads the top-level `usage` member of a JSON response body as its chunks pass, whatever the
 * endpoint (chat, embeddings, responses, images, transcriptions…), without holding or parsing the
 * rest: it tracks nesting and strings byte by byte (strings are skipped natively), keeps only the
 * bytes of the `usage` value, and parses just those.
 *
 * @example
 * const reader = new JsonUsageReader();
 * for await (const chunk of body) reader.push(chunk);
 * reader.usage; // { promptTokens: 12, … } or null
 */
export class JsonUsageReader {
  #depth = 0;
  #inString = false;
  #escaped = false;
  /** The top-level key being read, while inside it. */
  #key: number[] | null = null;
  /** The last complete top-level key, until its value starts. */
  #lastKey: string | null = null;
  #afterColon = false;
  /** The `usage` value's bytes, while inside it. */
  #held: Uint8Array[] | null = null;
  #heldBytes = 0;
  #usage: Usage | null = null;

  get usage(): Usage | null {
    return this.#usage;
  }

  push(chunk: Uint8Array): void {
    let holdFrom = this.#held === null ? -1 : 0;
    /** The next quote at or after the last search; -1 when the chunk has none left, -2 before the first search. */
    let nextQuote = -2;
    for (let i = 0; i < chunk.byteLength; i++) {
      const byte = chunk[i] as number;
      if (this.#inString) {
        if (this.#escaped) {
          this.#escaped = false;
          this.#key?.push(byte);
          continue;
        }
        if (this.#key === null) {
          // Jump to the next quote or backslash natively: long strings are most of a body. The
          // quote is found once per stretch, and each backslash only before it, so a string full
          // of escapes costs one pass, not one pass per escape.
          if (nextQuote === -2 || (nextQuote !== -1 && nextQuote < i)) nextQuote = chunk.indexOf(QUOTE, i);
          const end = nextQuote === -1 ? chunk.byteLength : nextQuote;
          const slash = chunk.subarray(i, end).indexOf(BACKSLASH);
          const stop = slash !== -1 ? i + slash : nextQuote;
          if (stop === -1) break;
          i = stop;
        }
        const at = chunk[i] as number;
        if (at === BACKSLASH) {
          this.#escaped = true;
          this.#key?.push(at);
        } else if (at === QUOTE) {
          this.#inString = false;
          if (this.#key !== null) {
            this.#lastKey = decoder.decode(Uint8Array.from(this.#key));
            this.#key = null;
          }
        } else {
          this.#key?.push(at);
        }
        continue;
      }
      if (byte === QUOTE) {
        this.#inString = true;
        // A string at depth 1 that is not a value is a key.
        if (this.#depth === 1 && !this.#afterColon) this.#key = [];
        continue;
      }
      if (byte === COLON && this.#depth === 1) {
        this.#afterColon = true;
        continue;
      }
      if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        if (this.#depth === 1 && this.#afterColon && this.#lastKey === USAGE_KEY && byte === OPEN_BRACE) {
          this.#held = [];
          this.#heldBytes = 0;
          holdFrom = i;
        }
        this.#depth++;
        continue;
      }
      if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        this.#depth--;
        if (this.#depth === 1 && this.#held !== null) {
          this.#hold(chunk.subarray(holdFrom, i + 1));
          this.#finishUsage();
          holdFrom = -1;
        }
        continue;
      }
      if (byte === COMMA && this.#depth === 1) {
        // A comma ends a top-level member.
        this.#afterColon = false;
        this.#lastKey = null;
      }
    }
    if (this.#held !== null && holdFrom !== -1) this.#hold(chunk.subarray(holdFrom));
  }

  #hold(piece: Uint8Array): void {
    if (this.#held === null) return;
    this.#heldBytes += piece.byteLength;
    if (this.#heldBytes > MAX_USAGE_BYTES) {
      this.#held = null;
      return;
    }
    // A copy: the chunk itself goes on to the client.
    this.#held.push(piece.slice());
  }

  #finishUsage(): void {
    const held = this.#held;
    this.#held = null;
    if (held === null) return;
    const bytes = concatBytes(held);
    try {
      this.#usage = readUsage(JSON.parse(decoder.decode(bytes))) ?? this.#usage;
    } catch {
      // Not JSON after all: leave the usage unknown.
    }
  }
}
