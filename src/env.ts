/**
 * The Worker's bindings: the vars in `wrangler.jsonc` (typed by `wrangler types`)
 * plus the secrets, which `wrangler types` cannot see and are declared here.
 */
export interface Env extends Cloudflare.Env {
  OPENAI_API_KEY?: string;
  OPENAI_ORGANIZATION?: string;
  OPENAI_PROJECT?: string;
  /** Client keys, `name:key,name:key`. */
  PROXY_KEYS?: string;
  /** The HS256 secret that signs client tokens. */
  PROXY_JWT_SECRET?: string;
  /** Bearer token for `GET /admin/usage`; unset, the route does not exist. */
  ADMIN_TOKEN?: string;
  /** Cloudflare Turnstile's secret key: sessions for pages with no backend are on when it is set. */
  TURNSTILE_SECRET_KEY?: string;
}

/** Hono's environment for this app: the bindings. Per-request variables are declared by the steps that set them. */
export type AppEnv = { Bindings: Env };
