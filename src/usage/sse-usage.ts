import { ASCII, startsWithAt } from "../lib/bytes";
import { isRecord } from "../lib/json";
import { readUsage, type Usage } from "./usage";

const { LF, CR, SPACE, QUOTE, COLON, OPEN_BRACE: BRACE } = ASCII;

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
 * Reads usage from the complete events of an SSE stream, for `SseFramer`, without parsing every
 * event:
 * - only events whose text has a `"usage":{` key are JSON-parsed: a chat or completions usage
 *   chunk (`{"choices":[],"usage":{…}}`), the Responses API's `response.completed` (its
 *   `response.usage`), an image stream's `image_generation.completed` or a transcription's
 *   `transcript.text.done` (their `usage`); the last usage seen wins;
 * - when `dropUsageChunk` is true (the proxy itself added `stream_options.include_usage`), asks
 *   for the chat usage event (`"choices":[]` with a `usage` object) to be removed, so the client
 *   gets exactly what it asked for;
 * - counts the data events (`events`) and the ones that carry output (`contentEvents`: a non-empty
 *   `content`, `arguments`, `text`, `refusal` or `delta` string; only `delta` in a stream of named
 *   events), so that a stream without usage can be estimated at about one token per content event.
 *
 * @example
 * const usage = new SseUsageReader({ dropUsageChunk: true });
 * const framer = new SseFramer(usage);
 * // … after the stream: usage.usage ?? estimate(usage.contentEvents)
 */
export class SseUsageReader {
  #usage: Usage | null = null;
  #events = 0;
  #contentEvents = 0;
  readonly #dropUsageChunk: boolean;

  constructor(options: { dropUsageChunk: boolean }) {
    this.#dropUsageChunk = options.dropUsageChunk;
  }

  /** The last usage seen. */
  get usage(): Usage | null {
    return this.#usage;
  }

  /** Complete events with a `data` field, `data: [DONE]` and a removed usage chunk included. */
  get events(): number {
    return this.#events;
  }

  /** Complete events that carry output. */
  get contentEvents(): number {
    return this.#contentEvents;
  }

  skipped(): void {
    this.#events++;
  }

  read(buf: Uint8Array, from: number, end: number): Array<[number, number]> | null {
    let drops: Array<[number, number]> | null = null;
    let start = from;
    let responses = from < end && startsWithAt(buf, from, EVENT);
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
        responses = stop < end && startsWithAt(buf, stop, EVENT);
        content = false;
        usage = false;
      }
    }
    return drops;
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
      this.#usage = readUsage(event.usage) ?? this.#usage;
      return this.#dropUsageChunk && Array.isArray(event.choices) && event.choices.length === 0;
    }
    if (typeof event.type === "string" && event.type.startsWith("response.")) {
      this.#usage = (isRecord(event.response) ? readUsage(event.response.usage) : null) ?? this.#usage;
    }
    return false;
  }
}

/** Whether the event in `buf[start, stop)` has a `data` line. */
function hasData(buf: Uint8Array, start: number, stop: number): boolean {
  for (let line = start; line < stop; ) {
    if (startsWithAt(buf, line, DATA)) {
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
  return buf[at - 1] === QUOTE && startsWithAt(buf, at, name);
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
