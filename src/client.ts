/**
 * Who is calling, once authenticated. `id` keys the rate limiter and the usage ledger; `name` is
 * what logs show (never a key or a token).
 */
export type Client = {
  /** `key:web`, `sub:alice` or `ip:203.0.113.9`: the kind keeps a key name, a token subject and an IP apart. */
  id: string;
  kind: "key" | "token" | "ip";
  /** The key's name, the token's `sub`, or the IP. */
  name: string;
  /** Token claim `models`: allowed model patterns. */
  models?: string[];
  /** Token claim `origin`: the only origin the token may be used from (already checked). */
  origin?: string;
  /** Token claim `rpm`: requests per minute, replacing the default. */
  rpm?: number;
  /** Token claim `tpd`: tokens per UTC day, replacing the default. */
  tpd?: number;
  /** Token claim `usd`: US dollars per UTC day, replacing the default. */
  usd?: number;
  /** Token claim `exp`: when the token expires, in seconds since the epoch. */
  exp?: number;
};
