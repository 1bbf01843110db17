import { ASCII, concatBytes } from "../lib/bytes";
import { readUsage, type Usage, usageFromBody } from "./usage";

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

/** A JSON answer as the client gets it, and its top-level usage (null when there is none). */
export type JsonAnswer = { body: Uint8Array | ReadableStream<Uint8Array>; usage: Promise<Usage | null> };

/**
 * Reads a JSON answer for its top-level `usage`. A body that ends within `WHOLE_BYTES` (nearly
 * every answer) is read whole (at once when its `content-length` says so), its usage parsed natively, and handed on as bytes: no second
 * stream. A larger one streams on to the client from where the reading stopped, read for usage as
 * it passes, holding nothing but the usage, and read to its end if the client leaves; its `usage`
 * rejects when it breaks off. Rejects when the body breaks off before `WHOLE_BYTES`: nothing has
 * reached the client then.
 *
 * @example
 * const { body, usage } = await readJsonAnswer(upstream);
 * return { response: new Response(body, { status, headers }), outcome: usage.then(settle) };
 */
export async function readJsonAnswer(answer: Response): Promise<JsonAnswer> {
  const body = answer.body;
  if (body === null) return { body: new Uint8Array(), usage: Promise.resolve(null) };
  const declared = answer.headers.get("content-length");
  if (declared !== null && Number(declared) <= WHOLE_BYTES) {
    // Its size known and small: one native read.
    const bytes = new Uint8Array(await answer.arrayBuffer());
    return { body: bytes, usage: Promise.resolve(usageOfWhole(bytes, [bytes])) };
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      const bytes = concatBytes(chunks);
      return { body: bytes, usage: Promise.resolve(usageOfWhole(bytes, chunks)) };
    }
    chunks.push(value);
    size += value.byteLength;
    if (size > WHOLE_BYTES) break;
  }
  const passing = new JsonUsageReader();
  for (const chunk of chunks) passing.push(chunk);
  // The rest goes to the client through a native stream the proxy writes to (as streams do, see
  // passThroughSse: a JavaScript stream the runtime reads keeps promises per chunk until it ends);
  // once the client has gone, the rest is read for its usage all the same.
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  let clientGone = false;
  const write = async (chunk: Uint8Array) => {
    if (clientGone) return;
    await writer.write(chunk).catch(() => {
      clientGone = true;
    });
  };
  const usage = (async (): Promise<Usage | null> => {
    try {
      for (const chunk of chunks) await write(chunk);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        passing.push(value);
        await write(value);
      }
    } catch (error) {
      await writer.abort(error).catch(() => {});
      throw error;
    }
    await writer.close().catch(() => {});
    return passing.usage;
  })();
  // Its failure is the caller's to read (forward.ts settles the outcome as a cut), whenever it looks.
  usage.catch(() => {});
  const stream = readable;
  return { body: stream, usage };
}

/**
 * The top-level `usage` of a whole JSON body (see `readJsonAnswer`). Not JSON as a whole (a body
 * cut short): what reading it as it passes finds in it.
 */
function usageOfWhole(bytes: Uint8Array, chunks: readonly Uint8Array[]): Usage | null {
  try {
    return usageFromBody(JSON.parse(decoder.decode(bytes)));
  } catch {
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
