/**
 * The bytes of `chunks`, one after another, in a new array.
 *
 * @example
 * concatBytes([Uint8Array.of(1), Uint8Array.of(2, 3)]) // Uint8Array [1, 2, 3]
 */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((size, chunk) => size + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Whether `bytes` holds `prefix` at `at`.
 *
 * @example
 * startsWithAt(new TextEncoder().encode('x"key"'), 1, new TextEncoder().encode('"key"')); // true
 */
export function startsWithAt(bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

/** Visible ASCII only: what an HTTP header value (a key, a token) can carry without being refused or altered. */
export const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** The ASCII bytes that JSON and server-sent events are framed by, for byte-level scanners. */
export const ASCII = {
  TAB: 0x09,
  LF: 0x0a,
  CR: 0x0d,
  SPACE: 0x20,
  QUOTE: 0x22,
  COMMA: 0x2c,
  COLON: 0x3a,
  OPEN_BRACKET: 0x5b,
  BACKSLASH: 0x5c,
  CLOSE_BRACKET: 0x5d,
  OPEN_BRACE: 0x7b,
  CLOSE_BRACE: 0x7d,
} as const;
