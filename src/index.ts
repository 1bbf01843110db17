import { createApp } from "./app";
import type { Env } from "./env";

export { SpendCeiling } from "./limits/ceiling";
export { RateLimiter } from "./limits/rate-limiter";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
