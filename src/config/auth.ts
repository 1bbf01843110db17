import { VISIBLE_ASCII } from "../lib/bytes";
/** Who may call the proxy, parsed once per isolate from `PROXY_KEYS` and `PROXY_JWT_SECRET`. */
export type AuthSettings = {
  /** Which credentials are accepted. Decided by which secrets are set, even when one is invalid: never falls back to open. */
  mode: "open" | "keys" | "tokens" | "keys+tokens";
  /** Key name → the key's SHA-256, computed on first use and then kept. */
  keys: ReadonlyMap<string, KeyDigest>;
  /** The HMAC secret tokens are signed with; null when unset or invalid (then no token verifies). */
  jwtSecret: Uint8Array | null;
};

/** Resolves to a key's SHA-256; hashes on the first call only. */
export type KeyDigest = () => Promise<ArrayBuffer>;

/** At least this many characters in a client key. */
export const MIN_KEY_LENGTH = 16;
/** At least this many characters in `PROXY_JWT_SECRET` (256 bits of ASCII for HS256). */
export const MIN_JWT_SECRET_LENGTH = 32;

const KEY_NAME = /^[A-Za-z0-9_.-]+$/;
/** Three base64url parts: what `authenticate` treats as a token rather than a key. */
export const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * Parses `PROXY_KEYS` (`web:pk_abc…,backend:pk_def…`) and `PROXY_JWT_SECRET`, reporting every
 * problem at once in `errors`, by setting name. Errors name keys by their position and name,
 * never by their value, and never quote the secret. Synchronous: keys are hashed on first use.
 *
 * @example
 * const { settings, errors } = parseAuthSettings({ PROXY_KEYS: "web:pk_0123456789abcdef" });
 * // settings.mode === "keys", errors.length === 0
 */
export function parseAuthSettings(env: { PROXY_KEYS?: string; PROXY_JWT_SECRET?: string }): {
  settings: AuthSettings;
  errors: string[];
} {
  const errors: string[] = [];
  const rawKeys = stringSetting(env.PROXY_KEYS);
  const rawSecret = stringSetting(env.PROXY_JWT_SECRET);

  const keys = rawKeys === undefined ? new Map<string, KeyDigest>() : parseKeys(rawKeys, errors);

  let jwtSecret: Uint8Array | null = null;
  if (rawSecret !== undefined) {
    if (rawSecret.length < MIN_JWT_SECRET_LENGTH) {
      errors.push(`PROXY_JWT_SECRET must be at least ${MIN_JWT_SECRET_LENGTH} characters long`);
    } else {
      jwtSecret = new TextEncoder().encode(rawSecret);
    }
  }

  const mode =
    rawKeys !== undefined && rawSecret !== undefined
      ? "keys+tokens"
      : rawKeys !== undefined
        ? "keys"
        : rawSecret !== undefined
          ? "tokens"
          : "open";
  return { settings: { mode, keys, jwtSecret }, errors };
}

function stringSetting(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

function parseKeys(raw: string, errors: string[]): Map<string, KeyDigest> {
  const keys = new Map<string, KeyDigest>();
  const namesByKey = new Map<string, string>();
  const entries = raw.split(",").map((entry) => entry.trim());
  entries.forEach((entry, index) => {
    if (entry === "") return;
    // An entry that does not parse may be a bare key: name it by position only.
    const at = `PROXY_KEYS entry ${index + 1}`;
    const colon = entry.indexOf(":");
    if (colon === -1) {
      errors.push(`${at} is not name:key`);
      return;
    }
    const name = entry.slice(0, colon).trim();
    const key = entry.slice(colon + 1).trim();
    const problems: string[] = [];
    if (!KEY_NAME.test(name)) problems.push("its name must be letters, digits, _ . or - only");
    if (key.length < MIN_KEY_LENGTH) problems.push(`its key must be at least ${MIN_KEY_LENGTH} characters long`);
    else if (!VISIBLE_ASCII.test(key)) problems.push("its key must be visible ASCII characters only (no spaces)");
    else if (JWT_SHAPE.test(key)) problems.push("its key looks like a JWT (three parts separated by dots)");
    if (problems.length > 0) {
      errors.push(`${at}: ${problems.join("; ")}`);
      return;
    }
    if (keys.has(name)) {
      errors.push(`PROXY_KEYS names "${name}" more than once`);
      return;
    }
    const other = namesByKey.get(key);
    if (other !== undefined) {
      errors.push(`PROXY_KEYS gives "${other}" and "${name}" the same key`);
      return;
    }
    namesByKey.set(key, name);
    keys.set(name, lazyDigest(key));
  });
  if (entries.every((entry) => entry === "")) errors.push("PROXY_KEYS is set but lists no keys");
  return keys;
}

/**
 * Keeps the resolved digest, not the promise: a promise made during one request must not be
 * awaited by another, which workerd may never resolve if the first request has ended.
 */
function lazyDigest(key: string): KeyDigest {
  let resolved: ArrayBuffer | undefined;
  return async function keyDigest() {
    resolved ??= await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
    return resolved;
  };
}
