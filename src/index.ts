import { createApp } from "./app";
import type { Env } from "./env";
import type { UsageRecord } from "./usage/ledger";
import { consumeUsage } from "./usage/ledger-queue";

export { SpendCeiling } from "./limits/ceiling";
export { RateLimiter } from "./limits/rate-limiter";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
  queue: (batch, env, _ctx) => consumeUsage(batch, env),
} satisfies ExportedHandler<Env, UsageRecord | UsageRecord[]>;
