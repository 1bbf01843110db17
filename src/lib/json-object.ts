import { ASCII } from "./bytes";

/**
 * A JSON object read in place: where each top-level member's value lies in the bytes, found by one
 * strict pass over them without building any value. Small values are parsed on demand; the body
 * itself is never decoded, parsed whole or copied, so a 50 MB request costs its own bytes and
 * little more.
 */
export type JsonObject = {
  readonly bytes: Uint8Array;
  /** Each top-level key (decoded) → its value's `[start, end)` in `bytes`; the last one when a key repeats. */
  readonly members: ReadonlyMap<string, readonly [number, number]>;
  /** Top-level keys that appear more than once: JSON parsers disagree on which one wins. */
  readonly duplicates: ReadonlySet<string>;
  /** Where the object's opening brace is. */
  readonly open: number;
  /** String values of at least `LARGE_STRING_BYTES`: their contents' `[start, end)`, and the key they are the value of, if any. */
  readonly largeStrings: readonly LargeString[];
};

/** A long string value: where its contents lie, and the member key it is the value of (null for an array element). */
export type LargeString = { start: number; end: number; key: string | null };

/** A string at least this long is reported in `largeStrings` (base64 images, audio, files). */
export const LARGE_STRING_BYTES = 2048;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

const { QUOTE, BACKSLASH, COMMA, COLON, OPEN_BRACE, CLOSE_BRACE, OPEN_BRACKET, CLOSE_BRACKET, SPACE, LF, CR, TAB } =
  ASCII;

/** Nesting deeper than this is refused: no real request comes near it, and it bounds the work. */
const MAX_DEPTH = 512;

/**
 * Reads `bytes` as one strict JSON object (RFC 8259: no comments, no trailing commas, no BOM,
 * UTF-8 assumed), or returns null when it is anything else. Strictness matters: the proxy decides
 * on what it reads here (the model, the output cap), and upstream must read the same thing.
 *
 * @example
 * const object = readJsonObject(new TextEncoder().encode('{"model":"gpt-4o","stream":true}'));
 * memberValue(object, "model"); // "gpt-4o"
 */
export function readJsonObject(bytes: Uint8Array): JsonObject | null {
  const scanner = new Scanner(bytes);
  try {
    return scanner.object();
  } catch (error) {
    if (error === INVALID) return null;
    throw error;
  }
}

/**
 * The value of the top-level member `key`, parsed; undefined when the object has no such member.
 *
 * @example
 * memberValue(object, "max_tokens"); // 4000
 */
export function memberValue(object: JsonObject, key: string): unknown {
  const span = object.members.get(key);
  if (span === undefined) return undefined;
  return JSON.parse(decoder.decode(object.bytes.subarray(span[0], span[1])));
}

/**
 * How many elements the top-level member `key` holds when it is an array (its value, checked by
 * `readJsonObject`, is walked without being parsed); null when it is missing or not an array.
 *
 * @example
 * arrayLength(object, "prompt"); // 3 for {"prompt": ["a", "b", "c"]}
 */
export function arrayLength(object: JsonObject, key: string): number | null {
  const span = object.members.get(key);
  if (span === undefined) return null;
  const bytes = object.bytes;
  const [start, end] = span;
  if (bytes[start] !== OPEN_BRACKET) return null;
  let depth = 0;
  let count = 0;
  let empty = true;
  for (let at = start; at < end; at++) {
    const byte = bytes[at];
    if (byte === QUOTE) {
      // Skip the string: to the next quote that no backslash escapes.
      for (at++; at < end && bytes[at] !== QUOTE; at++) if (bytes[at] === BACKSLASH) at++;
      if (depth === 1) empty = false;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (depth === 1) empty = false;
      depth++;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    } else if (byte === COMMA && depth === 1) {
      count++;
    } else if (depth === 1 && byte !== SPACE && byte !== LF && byte !== CR && byte !== TAB) {
      empty = false;
    }
  }
  return empty ? 0 : count + 1;
}

/**
 * The bytes of `object` with top-level members replaced or added (`undefined` removes nothing and
 * adds nothing), as pieces to send one after another: a member that exists keeps its place and
 * gets the new value; a new one goes first. Every other byte stays as the client sent it, in views
 * of the original bytes: a rewrite copies nothing but the new values.
 *
 * @example
 * concatBytes(withMembers(object, { max_tokens: 4096 })); // {"max_tokens":4096,"model":"gpt-4o",…}
 */
export function withMembers(object: JsonObject, changes: Readonly<Record<string, unknown>>): Uint8Array[] {
  const replaced: Array<{ start: number; end: number; text: Uint8Array }> = [];
  let added = "";
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) continue;
    const span = object.members.get(key);
    if (span === undefined) added += `${JSON.stringify(key)}:${JSON.stringify(value)},`;
    else replaced.push({ start: span[0], end: span[1], text: encoder.encode(JSON.stringify(value)) });
  }
  if (added !== "" && object.members.size === 0) added = added.slice(0, -1);
  const insert = encoder.encode(added);
  replaced.sort((a, b) => a.start - b.start);
  const src = object.bytes;
  let from = object.open + 1;
  const pieces = [src.subarray(0, from), insert];
  for (const r of replaced) {
    pieces.push(src.subarray(from, r.start), r.text);
    from = r.end;
  }
  pieces.push(src.subarray(from));
  return pieces.filter((piece) => piece.byteLength > 0);
}

const INVALID = Symbol("invalid JSON");

class Scanner {
  readonly #bytes: Uint8Array;
  #at = 0;
  readonly #largeStrings: LargeString[] = [];
  /** The key whose value comes next, until that value has begun. */
  #pendingKey: readonly [number, number] | null = null;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  object(): JsonObject {
    const bytes = this.#bytes;
    this.#space();
    const open = this.#at;
    if (bytes[open] !== OPEN_BRACE) throw INVALID;
    this.#at++;
    const members = new Map<string, readonly [number, number]>();
    const duplicates = new Set<string>();
    this.#space();
    if (bytes[this.#at] === CLOSE_BRACE) {
      this.#at++;
    } else {
      for (;;) {
        this.#space();
        const keyStart = this.#at;
        const escaped = this.#string(false);
        this.#pendingKey = [keyStart, this.#at];
        const key = escaped
          ? (JSON.parse(decoder.decode(bytes.subarray(keyStart, this.#at))) as string)
          : decoder.decode(bytes.subarray(keyStart + 1, this.#at - 1));
        this.#space();
        if (bytes[this.#at] !== COLON) throw INVALID;
        this.#at++;
        this.#space();
        const valueStart = this.#at;
        this.#value(1);
        if (members.has(key)) duplicates.add(key);
        members.set(key, [valueStart, this.#at]);
        this.#space();
        const next = bytes[this.#at++];
        if (next === CLOSE_BRACE) break;
        if (next !== COMMA) throw INVALID;
      }
    }
    this.#space();
    if (this.#at !== bytes.byteLength) throw INVALID;
    return { bytes, members, duplicates, open, largeStrings: this.#largeStrings };
  }

  #space(): void {
    const bytes = this.#bytes;
    let at = this.#at;
    for (;;) {
      const byte = bytes[at];
      if (byte !== SPACE && byte !== LF && byte !== CR && byte !== TAB) break;
      at++;
    }
    this.#at = at;
  }

  /** Skips one value, checking its syntax; containers iteratively, so depth costs no stack. */
  #value(depth: number): void {
    const bytes = this.#bytes;
    // Closing brackets still expected, innermost last.
    const stack: number[] = [];
    for (;;) {
      this.#space();
      const byte = bytes[this.#at];
      if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
        this.#pendingKey = null;
        if (depth + stack.length >= MAX_DEPTH) throw INVALID;
        this.#at++;
        this.#space();
        const close = byte === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
        if (bytes[this.#at] === close) {
          this.#at++;
        } else {
          stack.push(close);
          if (close === CLOSE_BRACE) this.#memberKey();
          continue;
        }
      } else if (byte === QUOTE) {
        this.#string(true);
      } else {
        this.#pendingKey = null;
        this.#scalar();
      }
      // After a value: close containers, or go on to the next element or member.
      for (;;) {
        const close = stack.at(-1);
        if (close === undefined) return;
        this.#space();
        const next = bytes[this.#at++];
        if (next === close) {
          stack.pop();
          continue;
        }
        if (next !== COMMA) throw INVALID;
        this.#space();
        if (close === CLOSE_BRACE) this.#memberKey();
        break;
      }
    }
  }

  /** A key's text, decoded (JSON escapes included). */
  #keyOf(span: readonly [number, number] | null): string | null {
    if (span === null) return null;
    return JSON.parse(decoder.decode(this.#bytes.subarray(span[0], span[1]))) as string;
  }

  /** A member's key and colon, inside a nested object. */
  #memberKey(): void {
    const keyStart = this.#at;
    this.#string(false);
    this.#pendingKey = [keyStart, this.#at];
    this.#space();
    if (this.#bytes[this.#at] !== COLON) throw INVALID;
    this.#at++;
  }

  /**
   * Skips a string at `#at`, checking its escapes; returns whether it had any. Raw control
   * characters and bad UTF-8 are left for upstream to refuse: they cannot change what the
   * object's members are. Quotes and backslashes are found natively (`indexOf`), each byte once.
   */
  #string(isValue: boolean): boolean {
    const bytes = this.#bytes;
    if (bytes[this.#at] !== QUOTE) throw INVALID;
    const start = this.#at + 1;
    let at = start;
    let quote = bytes.indexOf(QUOTE, at);
    let escaped = false;
    for (;;) {
      if (quote === -1) throw INVALID;
      const backslash = bytes.subarray(at, quote).indexOf(BACKSLASH);
      if (backslash === -1) break;
      escaped = true;
      at = this.#escape(at + backslash);
      if (at > quote) quote = bytes.indexOf(QUOTE, at);
    }
    this.#at = quote + 1;
    if (isValue) {
      if (quote - start >= LARGE_STRING_BYTES)
        this.#largeStrings.push({ start, end: quote, key: this.#keyOf(this.#pendingKey) });
      this.#pendingKey = null;
    }
    return escaped;
  }

  /** Checks the escape at `slash`; returns where the string goes on. */
  #escape(slash: number): number {
    const bytes = this.#bytes;
    const kind = bytes[slash + 1];
    switch (kind) {
      case QUOTE:
      case BACKSLASH:
      case 0x2f: // /
      case 0x62: // b
      case 0x66: // f
      case 0x6e: // n
      case 0x72: // r
      case 0x74: // t
        return slash + 2;
      case 0x75: // u
        for (let i = slash + 2; i < slash + 6; i++) {
          const hex = bytes[i] ?? 0;
          const ok = (hex >= 0x30 && hex <= 0x39) || (hex >= 0x41 && hex <= 0x46) || (hex >= 0x61 && hex <= 0x66);
          if (!ok) throw INVALID;
        }
        return slash + 6;
      default:
        throw INVALID;
    }
  }

  /** A number, `true`, `false` or `null`. */
  #scalar(): void {
    const bytes = this.#bytes;
    const byte = bytes[this.#at];
    const literal = byte === 0x74 ? "true" : byte === 0x66 ? "false" : byte === 0x6e ? "null" : null;
    if (literal !== null) {
      this.#literal(literal);
      return;
    }
    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    let at = this.#at;
    if (bytes[at] === 0x2d) at++;
    if (bytes[at] === 0x30) at++;
    else if (isDigit(bytes[at])) while (isDigit(bytes[at])) at++;
    else throw INVALID;
    if (bytes[at] === 0x2e) {
      at++;
      if (!isDigit(bytes[at])) throw INVALID;
      while (isDigit(bytes[at])) at++;
    }
    if (bytes[at] === 0x65 || bytes[at] === 0x45) {
      at++;
      if (bytes[at] === 0x2b || bytes[at] === 0x2d) at++;
      if (!isDigit(bytes[at])) throw INVALID;
      while (isDigit(bytes[at])) at++;
    }
    this.#at = at;
  }

  #literal(word: string): void {
    const bytes = this.#bytes;
    for (let i = 0; i < word.length; i++) {
      if (bytes[this.#at + i] !== word.charCodeAt(i)) throw INVALID;
    }
    this.#at += word.length;
  }
}

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= 0x30 && byte <= 0x39;
}
