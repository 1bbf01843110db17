import { isRecord, type Usage, usageFromBody } from "./usage";

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const COLON = 0x3a;
const BRACE = 0x7b;
/**
 * An event still unfinished past this size is passed on in pieces rather than held, so an upstream
 * that never ends an event cannot make the proxy buffer its whole body. Real events stay far below
 * it (the largest are base64 images from the Responses image tool, a few MB); an event passed on in
 * pieces is counted but not read, so a usage inside one would be missed.
 */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

const ascii = (text: string) => new TextEncoder().encode(text);
const DATA = ascii("data");
const EVENT = ascii("event:");
const USAGE = ascii("usage");
const CONTENT = ascii("content");
const ARGUMENTS = ascii("arguments");
const TEXT = ascii("text");
const REFUSAL = ascii("refusal");
const DELTA = ascii("delta");
const LINE = /\r\n|\r|\n/;
const decoder = new TextDecoder();

/**
 * Taps an SSE stream as it passes, chunk by chunk, for the proxy's pass-through loop:
 * - forwards whole events only: bytes up to the last complete event boundary ("\n\n"; also accept "\r\n\r\n") of what has arrived go out at once; a trailing partial event is held until it completes (no client can dispatch half an event), so a chunk that ends on an event boundary goes out unchanged, as the same bytes object when nothing had to be held or removed;
 * - reads usage without parsing every event: only events whose text contains `"usage":{` (chat/completions final usage chunk: `{"id":…,"choices":[],"usage":{…}}`) or the Responses API `response.completed` event (`event: response.completed\ndata: {"type":"response.completed","response":{…,"usage":{…}}}`) are JSON-parsed;
 * - when `dropUsageChunk` is true (the proxy itself added `stream_options.include_usage`), removes the chat usage event (the one with `"choices":[]` and a `usage` object) from the bytes it forwards, leaving every other byte exactly as upstream sent it (the `"usage":null` field on other chunks stays);
 * - counts the data events it has passed (`events`), and the content-bearing ones (`contentEvents`: chat `delta.content`/tool-call argument chunks or Responses `response.output_text.delta` — a cheap substring check is fine), so that a cut stream's output can be estimated (about one token per content event).
 */
export type StreamTap = {
  /**
   * Feed one upstream chunk; returns the bytes to forward now, or null when there is nothing to
   * forward yet (never an empty array). The result is the chunk itself when it ends on an event
   * boundary and nothing was held or removed, otherwise a view of it or a new array. A chunk is
   * kept (not copied) while it holds only part of an event: do not write into it after pushing it.
   */
  push(chunk: Uint8Array): Uint8Array | null;
  /** Upstream ended or broke off: returns whatever was held (a partial last event), to be forwarded as is; null when nothing was. */
  flush(): Uint8Array | null;
  /** The last usage seen (chat usage chunk, or the `response` of a Responses `response.completed`/`incomplete`/`failed` event). */
  readonly usage: Usage | null;
  /** Complete events with a `data` field, `data: [DONE]` and a removed usage chunk included. */
  readonly events: number;
  /** Complete events that carry output: a non-empty `content`, `arguments`, `text`, `refusal` or `delta` string. */
  readonly contentEvents: number;
};

/**
 * A tap for one stream. Event boundaries are blank lines ending in LF (`\n\n`, `\r\n\r\n`,
 * `\n\r\n`), found even when they straddle two chunks; a stream with CR-only line ends is held
 * whole up to the size limit. Only complete events are counted and read: the partial event that
 * `flush` returns is not.
 *
 * @example
 * const tap = createStreamTap({ dropUsageChunk: !clientAskedForUsage });
 * for await (const chunk of upstream) {
 *   const out = tap.push(chunk);
 *   if (out !== null) controller.enqueue(out);
 * }
 * const rest = tap.flush();
 * if (rest !== null) controller.enqueue(rest);
 * record(tap.usage ?? estimate(tap.contentEvents));
 */
export function createStreamTap(options: { dropUsageChunk: boolean }): StreamTap {
  return new SseTap(options.dropUsageChunk);
}

class SseTap implements StreamTap {
  #usage: Usage | null = null;
  #events = 0;
  #contentEvents = 0;
  readonly #dropUsageChunk: boolean;
  /** The partial event so far, in the pieces it came in. */
  readonly #held: Uint8Array[] = [];
  #heldBytes = 0;
  /** Inside an event too large to hold, whose start has already been passed on. */
  #passing = false;
  /** The stream's last two bytes so far (LF before the start): a blank line can straddle two chunks. */
  #last1 = LF;
  #last2 = LF;

  constructor(dropUsageChunk: boolean) {
    this.#dropUsageChunk = dropUsageChunk;
  }

  get usage(): Usage | null {
    return this.#usage;
  }

  get events(): number {
    return this.#events;
  }

  get contentEvents(): number {
    return this.#contentEvents;
  }

  push(chunk: Uint8Array): Uint8Array | null {
    const size = chunk.byteLength;
    if (size === 0) return null;
    const end = this.#lastBoundary(chunk);
    let out: Uint8Array | null;
    if (end === 0) {
      // No event ends in this chunk.
      out = this.#passing ? chunk : this.#hold(chunk);
    } else if (this.#passing) {
      this.#passing = false;
      this.#events++;
      out = this.#forward(chunk, this.#firstBoundary(chunk), end);
    } else if (this.#heldBytes === 0) {
      out = this.#forward(chunk, 0, end);
    } else {
      const joined = new Uint8Array(this.#heldBytes + end);
      let offset = 0;
      for (const piece of this.#held) {
        joined.set(piece, offset);
        offset += piece.byteLength;
      }
      joined.set(end === size ? chunk : chunk.subarray(0, end), offset);
      this.#held.length = 0;
      this.#heldBytes = 0;
      out = this.#forward(joined, 0, joined.byteLength);
    }
    if (end > 0 && end < size) {
      // A copy: the part before it is handed on, and a consumer may transfer that buffer.
      this.#held.push(chunk.slice(end));
      this.#heldBytes = size - end;
    }
    if (size > 1) {
      this.#last2 = chunk[size - 2] ?? LF;
      this.#last1 = chunk[size - 1] ?? LF;
    } else {
      this.#last2 = this.#last1;
      this.#last1 = chunk[0] ?? LF;
    }
    return out;
  }

  flush(): Uint8Array | null {
    const held = this.#held;
    if (this.#heldBytes === 0) return null;
    let out = held[0];
    if (out === undefined || held.length > 1) {
      out = new Uint8Array(this.#heldBytes);
      let offset = 0;
      for (const piece of held) {
        out.set(piece, offset);
        offset += piece.byteLength;
      }
    }
    held.length = 0;
    this.#heldBytes = 0;
    return out;
  }

  /** Holds a piece of the partial event; past the size limit, gives everything held back to be passed on. */
  #hold(piece: Uint8Array): Uint8Array | null {
    this.#held.push(piece);
    this.#heldBytes += piece.byteLength;
    if (this.#heldBytes <= MAX_HELD_BYTES) return null;
    this.#passing = true;
    return this.flush();
  }

  /** Reads the complete events in `buf[from, end)`; returns `buf[0, end)` less any removed event, null if nothing is left. */
  #forward(buf: Uint8Array, from: number, end: number): Uint8Array | null {
    let drops: Array<[number, number]> | null = null;
    let start = from;
    let responses = from < end && startsWith(buf, from, EVENT);
    let content = false;
    let usage = false;
    // One plain loop over the bytes finds both the event ends (blank lines) and the keys (`":`):
    // it costs less than repeated indexOf calls, whose overhead is paid at every hit. Quotes inside
    // JSON strings are escaped, so text cannot pass for a key. `buf[start - 1]` is the LF that ended
    // the previous event (or nothing, at 0), so no check here needs the previous chunk.
    for (let i = from; i < end; i++) {
      const byte = buf[i];
      if (byte === COLON) {
        if (i === 0 || buf[i - 1] !== QUOTE) continue;
        let value = i + 1;
        while (buf[value] === SPACE) value++;
        const open = buf[value];
        if (open === BRACE) {
          usage ||= isKey(buf, i - 1, USAGE);
        } else if (open === QUOTE && !content && buf[value + 1] !== QUOTE) {
          content = responses ? isKey(buf, i - 1, DELTA) : isContentKey(buf, i - 1);
        }
      } else if (byte === LF) {
        // Reads never go below 0: a typed array read out of bounds is slow in V8.
        const before = i > 0 ? buf[i - 1] : LF;
        if (before !== LF && (before !== CR || (i > 1 ? buf[i - 2] : LF) !== LF)) continue;
        const stop = i + 1;
        if (this.#count(buf, start, stop, content) && usage && this.#read(buf, start, stop)) {
          drops ??= [];
          drops.push([start, stop]);
        }
        start = stop;
        responses = stop < end && startsWith(buf, stop, EVENT);
        content = false;
        usage = false;
      }
    }
    if (drops === null) return end === buf.byteLength ? buf : buf.subarray(0, end);
    return without(buf, end, drops);
  }

  /** Counts one complete event; false when it has no data (a comment, a blank line). */
  #count(buf: Uint8Array, start: number, stop: number, content: boolean): boolean {
    if (!hasData(buf, start, stop)) return false;
    this.#events++;
    if (content) this.#contentEvents++;
    return true;
  }

  #read(buf: Uint8Array, start: number, stop: number): boolean {
    let event: unknown;
    try {
      event = JSON.parse(dataOf(decoder.decode(buf.subarray(start, stop))));
    } catch {
      return false;
    }
    if (!isRecord(event)) return false;
    if (isRecord(event.usage)) {
      this.#usage = usageFromBody(event) ?? this.#usage;
      return this.#dropUsageChunk && Array.isArray(event.choices) && event.choices.length === 0;
    }
    if (typeof event.type === "string" && event.type.startsWith("response.")) {
      this.#usage = usageFromBody(event.response) ?? this.#usage;
    }
    return false;
  }

  /** Where the last complete event in `chunk` ends (0 if none does), blank lines across the seam included. */
  #lastBoundary(chunk: Uint8Array): number {
    for (let i = chunk.byteLength - 1; i >= 0; i--) {
      i = chunk.lastIndexOf(LF, i);
      if (i === -1) return 0;
      if (this.#endsEvent(chunk, i)) return i + 1;
    }
    return 0;
  }

  #firstBoundary(chunk: Uint8Array): number {
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      if (this.#endsEvent(chunk, i)) return i + 1;
    }
    return 0;
  }

  /** Whether the LF at `chunk[i]` ends an empty line, looking back into the previous chunk when needed. */
  #endsEvent(chunk: Uint8Array, i: number): boolean {
    const before = i > 0 ? chunk[i - 1] : this.#last1;
    if (before === LF) return true;
    if (before !== CR) return false;
    return (i > 1 ? chunk[i - 2] : i === 1 ? this.#last1 : this.#last2) === LF;
  }
}

/** Whether the event in `buf[start, stop)` has a `data` line. */
function hasData(buf: Uint8Array, start: number, stop: number): boolean {
  for (let line = start; line < stop; ) {
    if (startsWith(buf, line, DATA)) {
      const next = buf[line + DATA.length];
      if (next === COLON || next === LF || next === CR) return true;
    }
    const lf = buf.indexOf(LF, line);
    if (lf === -1) return false;
    line = lf + 1;
  }
  return false;
}

/** Whether the key whose closing quote is at `buf[quote]` is `name`. */
function isKey(buf: Uint8Array, quote: number, name: Uint8Array): boolean {
  const at = quote - name.length;
  return buf[at - 1] === QUOTE && startsWith(buf, at, name);
}

/** Keys whose non-empty string value marks an output-bearing chat or completions chunk. */
function isContentKey(buf: Uint8Array, quote: number): boolean {
  switch (buf[quote - 1]) {
    case 0x74: // t
      return isKey(buf, quote, CONTENT) || isKey(buf, quote, TEXT);
    case 0x73: // s
      return isKey(buf, quote, ARGUMENTS);
    case 0x6c: // l
      return isKey(buf, quote, REFUSAL);
    case 0x61: // a
      return isKey(buf, quote, DELTA);
    default:
      return false;
  }
}

function startsWith(buf: Uint8Array, at: number, prefix: Uint8Array): boolean {
  for (let j = 0; j < prefix.length; j++) if (buf[at + j] !== prefix[j]) return false;
  return true;
}

/** The event's data: its `data` lines' values, joined by LF, as an SSE client would dispatch it. */
function dataOf(event: string): string {
  let data: string | null = null;
  for (const line of event.split(LINE)) {
    if (!line.startsWith("data") || (line.length > 4 && line[4] !== ":")) continue;
    const value = line.slice(line[5] === " " ? 6 : 5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data ?? "";
}

/** `buf[0, end)` without the given ranges (in order, not overlapping); null when nothing is left. */
function without(buf: Uint8Array, end: number, drops: Array<[number, number]>): Uint8Array | null {
  let kept = end;
  for (const [start, stop] of drops) kept -= stop - start;
  if (kept === 0) return null;
  const only = drops.length === 1 ? drops[0] : undefined;
  if (only?.[0] === 0) return buf.subarray(only[1], end);
  if (only?.[1] === end) return buf.subarray(0, only[0]);
  const out = new Uint8Array(kept);
  let offset = 0;
  let from = 0;
  for (const [start, stop] of drops) {
    out.set(buf.subarray(from, start), offset);
    offset += start - from;
    from = stop;
  }
  out.set(buf.subarray(from, end), offset);
  return out;
}
