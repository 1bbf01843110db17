import { VISIBLE_ASCII } from "./bytes";

const encoder = new TextEncoder();

/**
 * The credential of an `Authorization: Bearer <credential>` header (scheme in any case), or
 * `null` when the header is absent, has another scheme, or carries nothing. A credential with
 * characters outside visible ASCII is returned as `""`: present but never valid.
 *
 * @example
 * bearerCredential("Bearer pk_abc"); // "pk_abc"
 * bearerCredential("Basic abc"); // null
 */
export function bearerCredential(header: string | null | undefined): string | null {
  const match = header == null ? null : /^Bearer(?:[ \t]+(.*))?$/i.exec(header);
  const credential = match?.[1]?.trim() ?? "";
  if (credential === "") return null;
  return VISIBLE_ASCII.test(credential) ? credential : "";
}

/**
 * The SHA-256 digest of a secret: what constant-time comparisons compare, so that both sides have
 * the same length whatever was sent.
 */
export function digest(secret: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(secret));
}

/**
 * Whether two digests are equal, in time that does not depend on where they differ.
 *
 * @example
 * await sameDigest(await digest(presented), await digest(expected));
 */
export function sameDigest(a: ArrayBuffer, b: ArrayBuffer): boolean {
  return crypto.subtle.timingSafeEqual(a, b);
}
