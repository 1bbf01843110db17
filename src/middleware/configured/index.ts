import type { MiddlewareHandler } from "hono";
import { type Config, getConfig, isReady } from "../../config";
import type { AppEnv } from "../../env";
import { ProxyError } from "../../errors";

declare module "hono" {
  interface ContextVariableMap {
    /** The parsed configuration, once it is known to be complete. */
    config: Config;
  }
}

/**
 * Refuses to proxy, with every bad setting named (500 `proxy_not_configured`, not retryable),
 * until the configuration is complete; then puts it in `config` for the steps after it.
 *
 * @example
 * app.post("/", configured(), clientAuth(), handler);
 */
export function configured(): MiddlewareHandler<AppEnv> {
  return async function configuredMiddleware(c, next) {
    const config = getConfig(c.env);
    if (!isReady(config)) {
      console.error(JSON.stringify({ level: "error", msg: "proxy is not configured", errors: config.errors }));
      throw new ProxyError(500, `proxy is not configured: ${config.errors.join("; ")}`, {
        code: "proxy_not_configured",
        retryable: false,
      });
    }
    c.set("config", config);
    await next();
  };
}
