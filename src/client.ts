/** What a verified client token says about its holder (see `verifyToken`). */
export type TokenClaims = {
  sub: string;
  /** Allowed model patterns; `[]` allows none. */
  models?: string[];
  /** The only origin the token may be used from. */
  origin?: string;
  /** Requests per minute, replacing the default. */
  rpm?: number;
  /** Tokens per UTC day, replacing the default. */
  tpd?: number;
  /** US dollars per UTC day, replacing the default. */
  usd?: number;
  /** When the token expires, in seconds since the epoch. */
  exp?: number;
};

/**
 * Who is calling, once authenticated. `id` keys the rate limiter and the usage ledger; `name` is
 * what logs show (never a key or a token). A token's client carries its claims (its `origin`
 * already checked).
 */
export type Client = {
  /** `key:web`, `sub:alice` or `ip:203.0.113.9`: the kind keeps a key name, a token subject and an IP apart. */
  id: string;
  kind: "key" | "token" | "ip";
  /** The key's name, the token's `sub`, or the IP. */
  name: string;
} & Omit<TokenClaims, "sub">;
