import { ASCII, concatBytes } from "../lib/bytes";

const { LF, CR } = ASCII;

/**
 * An event still unfinished past this size is passed on in pieces rather than held, so an upstream
 * that never ends an event cannot make the proxy buffer its whole body. Real events stay far below
 * it (the largest are base64 images from the image tools, a few MB); an event passed on in pieces
 * is not read.
 */
export const MAX_HELD_BYTES = 8 * 1024 * 1024;

/**
 * Reads the complete events that the framer hands it, and may ask for some to be removed.
 */
export type EventReader = {
  /**
   * Reads the complete events in `buf[from, end)` (`buf[from - 1]`, when there is one, is the LF
   * that ended the event before); returns the `[start, stop)` ranges to remove, in order, or null.
   */
  read(buf: Uint8Array, from: number, end: number): Array<[number, number]> | null;
  /** An event too large to hold was passed on unread. */
  skipped(): void;
};

/**
 * Frames an SSE stream chunk by chunk for the proxy's pass-through loop: bytes up to the last
 * complete event boundary (a blank line: `\n\n`, `\r\n\r\n`, `\n\r\n`, also across two chunks)
 * go out at once; a trailing partial event is held until it completes (no client can dispatch half
 * an event, and naive clients that split each read on newlines break on one). A chunk that ends on
 * an event boundary goes out unchanged, as the same bytes object, unless the reader removed an
 * event from it. A stream with CR-only line ends is held whole up to `MAX_HELD_BYTES`.
 *
 * @example
 * const framer = new SseFramer(reader);
 * const out = framer.push(chunk); // bytes to forward now, or null
 * const rest = framer.flush(); // at the end: what was held
 */
export class SseFramer {
  readonly #reader: EventReader | null;
  /** The partial event so far, in the pieces it came in. */
  readonly #held: Uint8Array[] = [];
  #heldBytes = 0;
  /** Inside an event too large to hold, whose start has already been passed on. */
  #passing = false;
  /** The stream's last two bytes so far (LF before the start): a blank line can straddle two chunks. */
  #last1: number = LF;
  #last2: number = LF;

  constructor(reader: EventReader | null) {
    this.#reader = reader;
  }

  /**
   * Feed one upstream chunk; returns the bytes to forward now, or null when there is nothing to
   * forward yet (never an empty array). A chunk is kept (not copied) while it holds only part of
   * an event: do not write into it after pushing it.
   */
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
      this.#reader?.skipped();
      out = this.#forward(chunk, this.#firstBoundary(chunk), end);
    } else if (this.#heldBytes === 0) {
      out = this.#forward(chunk, 0, end);
    } else {
      const joined = concatBytes([...this.#held, end === size ? chunk : chunk.subarray(0, end)]);
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

  /** Upstream ended or broke off: returns whatever was held (a partial last event), to be forwarded as is; null when nothing was. */
  flush(): Uint8Array | null {
    const held = this.#held;
    if (this.#heldBytes === 0) return null;
    let out = held[0];
    if (out === undefined || held.length > 1) out = concatBytes(held);
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
    const drops = this.#reader?.read(buf, from, end) ?? null;
    if (drops === null) return end === buf.byteLength ? buf : buf.subarray(0, end);
    return without(buf, end, drops);
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
