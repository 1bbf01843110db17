/** Which browser origins may call the proxy, compiled once from `ALLOWED_ORIGINS`. */
export type OriginPolicy = {
  /** `ALLOWED_ORIGINS=*`: any origin, answered with `Access-Control-Allow-Origin: *`. */
  any: boolean;
  exact: ReadonlySet<string>;
  /** `https://*.example.com` → `{ scheme: "https:", suffix: ".example.com", port: "" }`. */
  wildcards: readonly { scheme: string; suffix: string; port: string }[];
};

/**
 * Compiles a comma-separated allowlist of origins. Entries are exact origins
 * (`https://app.example.com`, `http://localhost:5173`) or subdomain patterns
 * (`https://*.example.com`, which matches `a.example.com` and `a.b.example.com` but not
 * `example.com`); scheme and port must match. `*` alone allows every origin.
 *
 * @example
 * parseOrigins("https://app.example.com,https://*.example.org").policy
 */
export function parseOrigins(raw: string): { policy: OriginPolicy; errors: string[] } {
  const entries = raw
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 1 && entries[0] === "*") {
    return { policy: { any: true, exact: new Set(), wildcards: [] }, errors: [] };
  }
  const exact = new Set<string>();
  const wildcards: { scheme: string; suffix: string; port: string }[] = [];
  const errors: string[] = [];
  for (const entry of entries) {
    const wildcard = /^(https?:)\/\/\*\.([^/:]+)(?::(\d+))?$/i.exec(entry);
    if (wildcard !== null) {
      const parsed = parseOrigin(`${wildcard[1]}//x.${wildcard[2]}${wildcard[3] ? `:${wildcard[3]}` : ""}`);
      if (parsed === undefined) {
        errors.push(`"${entry}" is not a valid origin pattern`);
        continue;
      }
      wildcards.push({ scheme: parsed.protocol, suffix: parsed.hostname.slice(1), port: parsed.port });
      continue;
    }
    const parsed = parseOrigin(entry);
    if (parsed === undefined || parsed.origin !== entry.toLowerCase().replace(/\/$/, "")) {
      errors.push(`"${entry}" is not an origin like https://app.example.com or https://*.example.com`);
      continue;
    }
    exact.add(parsed.origin);
  }
  if (entries.length === 0) errors.push("is empty; use * to allow every origin");
  return { policy: { any: false, exact, wildcards }, errors };
}

/** Whether a request's `Origin` header value is allowed. `null` and malformed origins never are. */
export function isOriginAllowed(policy: OriginPolicy, origin: string): boolean {
  if (policy.any) return true;
  if (policy.exact.has(origin)) return true;
  if (policy.wildcards.length === 0) return false;
  const parsed = parseOrigin(origin);
  if (parsed === undefined || parsed.origin !== origin) return false;
  return policy.wildcards.some(
    (w) => parsed.protocol === w.scheme && parsed.port === w.port && parsed.hostname.endsWith(w.suffix),
  );
}

/** Whether `value` is a serialized origin, as browsers send it in `Origin`: scheme, host, port, nothing else. */
export function isSerializedOrigin(value: string): boolean {
  return parseOrigin(value)?.origin === value;
}

function parseOrigin(value: string): URL | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
    if (url.username || url.password || url.search || url.hash) return undefined;
    if (url.pathname !== "/") return undefined;
    return url;
  } catch {
    return undefined;
  }
}
