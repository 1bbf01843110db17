const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A text field longer than this is not one the proxy reads (models, sizes and counts are short). */
const MAX_FIELD_BYTES = 1024;

/**
 * The values of the named text fields of a `multipart/form-data` body (RFC 7578), in order, found
 * without copying or decoding the file parts: delimiters are found natively, and only the headers
 * and the short values of the named fields are decoded. Null when the body is not well-formed
 * multipart with the boundary its `Content-Type` names.
 *
 * @example
 * formFields(bytes, "multipart/form-data; boundary=x", ["model"]); // Map { "model" => ["gpt-4o-transcribe"] }
 */
export function formFields(
  bytes: Uint8Array,
  contentType: string,
  names: readonly string[],
): Map<string, string[]> | null {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const value = boundary?.[1] ?? boundary?.[2];
  if (value === undefined) return null;
  const delimiter = encoder.encode(`--${value}`);
  const fields = new Map<string, string[]>();
  let at = indexOf(bytes, delimiter, 0);
  if (at === -1) return null;
  for (;;) {
    const afterDelimiter = at + delimiter.length;
    // The closing delimiter ends with "--".
    if (bytes[afterDelimiter] === 0x2d && bytes[afterDelimiter + 1] === 0x2d) return fields;
    const headersStart = afterDelimiter + 2;
    const headersEnd = indexOf(bytes, CRLF_CRLF, headersStart);
    if (headersEnd === -1) return null;
    const next = indexOf(bytes, delimiter, headersEnd + 4);
    if (next === -1) return null;
    const headers = decoder.decode(bytes.subarray(headersStart, headersEnd));
    const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(headers)?.[1] ?? "";
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1];
    const file = /;\s*filename\*?=/i.test(disposition);
    // The value ends at the CRLF before the next delimiter.
    const valueEnd = next - 2;
    if (name !== undefined && !file && names.includes(name) && valueEnd - (headersEnd + 4) <= MAX_FIELD_BYTES) {
      const values = fields.get(name) ?? [];
      values.push(decoder.decode(bytes.subarray(headersEnd + 4, Math.max(headersEnd + 4, valueEnd))));
      fields.set(name, values);
    }
    at = next;
  }
}

const CRLF_CRLF = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a);

/** Where `needle` first occurs in `haystack` from `from`, or -1; its first byte is found natively. */
function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  if (first === undefined) return from;
  for (let at = haystack.indexOf(first, from); at !== -1; at = haystack.indexOf(first, at + 1)) {
    let match = true;
    for (let i = 1; i < needle.length; i++) {
      if (haystack[at + i] !== needle[i]) {
        match = false;
        break;
      }
    }
    if (match) return at;
  }
  return -1;
}
