import { startsWithAt } from "./bytes";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A text field longer than this is not one a request may name (models, sizes and counts are short). */
export const MAX_FIELD_BYTES = 1024;

const CR = 0x0d;
const LF = 0x0a;
const DASH = 0x2d;

/**
 * The values of the named text fields of a `multipart/form-data` body (RFC 7578, RFC 2046 §5.1),
 * in order, read strictly so that the proxy sees the fields any conforming parser sees:
 * - the boundary is the `boundary` parameter of the content type, nothing else;
 * - a delimiter counts only at the start of the body or right after a CRLF, as the RFC says, so a
 *   file part that merely contains `--boundary` cannot pass for the end of a part;
 * - every part needs a quoted `name`, and a named field longer than `MAX_FIELD_BYTES` is refused.
 * Delimiters are found by their CRLF, natively, so a long file costs one pass over its bytes.
 * Also counts the file parts. Null when the body is not such a form.
 *
 * @example
 * formFields(bytes, "multipart/form-data; boundary=x", ["model"]); // { fields: Map { "model" => ["gpt-4o-transcribe"] }, files: 1 }
 */
export function formFields(
  bytes: Uint8Array,
  contentType: string,
  names: readonly string[],
): { fields: Map<string, string[]>; files: number } | null {
  const boundary = boundaryOf(contentType);
  if (boundary === null) return null;
  const delimiter = encoder.encode(`--${boundary}`);
  const fields = new Map<string, string[]>();
  let files = 0;
  // The first delimiter: at the very start, or after a preamble ending in CRLF.
  let at = startsWithAt(bytes, 0, delimiter) ? 0 : nextDelimiter(bytes, delimiter, 0);
  if (at === -1) return null;
  for (;;) {
    const after = at + delimiter.length;
    if (bytes[after] === DASH && bytes[after + 1] === DASH) return { fields, files }; // the closing delimiter
    // Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
    let line = after;
    while (bytes[line] === 0x20 || bytes[line] === 0x09) line++;
    if (bytes[line] !== CR || bytes[line + 1] !== LF) return null;
    const headersStart = line + 2;
    const headersEnd = indexOfSequence(bytes, CRLF_CRLF, headersStart);
    if (headersEnd === -1) return null;
    const next = nextDelimiter(bytes, delimiter, headersEnd + 2);
    if (next === -1) return null;
    const headers = decoder.decode(bytes.subarray(headersStart, headersEnd));
    const disposition = /^content-disposition:[ \t]*form-data(.*)$/im.exec(headers)?.[1];
    if (disposition === undefined) return null;
    const name = /;[ \t]*name="([^"]*)"/i.exec(disposition)?.[1];
    if (name === undefined) return null;
    const file = /;[ \t]*filename\*?=/i.test(disposition);
    if (file) files++;
    if (!file && names.includes(name)) {
      // The value ends at the CRLF that belongs to the next delimiter.
      const value = bytes.subarray(headersEnd + 4, next - 2);
      if (value.byteLength > MAX_FIELD_BYTES) return null;
      const values = fields.get(name) ?? [];
      values.push(decoder.decode(value));
      fields.set(name, values);
    }
    at = next;
  }
}

/** The `boundary` parameter of a multipart content type (RFC 2046 §5.1.1: 1 to 70 characters), or null. */
function boundaryOf(contentType: string): string | null {
  const match = /^multipart\/form-data[ \t]*((?:;[ \t]*[^=;\s]+=(?:"[^"]*"|[^;\s]*)[ \t]*)*)$/i.exec(
    contentType.trim(),
  );
  if (match === null) return null;
  let boundary: string | null = null;
  for (const parameter of (match[1] ?? "").matchAll(/;[ \t]*([^=;\s]+)=("[^"]*"|[^;\s]*)/g)) {
    if (parameter[1]?.toLowerCase() !== "boundary") continue;
    if (boundary !== null) return null; // twice: parsers would disagree on which
    const value = parameter[2] ?? "";
    boundary = value.startsWith('"') ? value.slice(1, -1) : value;
  }
  return boundary !== null && boundary.length >= 1 && boundary.length <= 70 ? boundary : null;
}

const CRLF_CRLF = Uint8Array.of(CR, LF, CR, LF);

/** Where the next `CRLF--boundary` begins its `--boundary` at or after `from`, or -1. */
function nextDelimiter(bytes: Uint8Array, delimiter: Uint8Array, from: number): number {
  for (let cr = bytes.indexOf(CR, Math.max(0, from - 2)); cr !== -1; cr = bytes.indexOf(CR, cr + 1)) {
    if (bytes[cr + 1] === LF && startsWithAt(bytes, cr + 2, delimiter) && cr + 2 >= from) return cr + 2;
  }
  return -1;
}

/** Where `needle` first occurs in `haystack` from `from`, or -1; found by its first byte, natively. */
function indexOfSequence(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  if (first === undefined) return from;
  for (let at = haystack.indexOf(first, from); at !== -1; at = haystack.indexOf(first, at + 1)) {
    if (startsWithAt(haystack, at, needle)) return at;
  }
  return -1;
}
