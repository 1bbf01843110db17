import { applyD1Migrations, type D1Migration, env } from "cloudflare:test";

// vitest.config.mts reads migrations/ in Node and passes them in as a binding; applying them is idempotent.
const { TEST_MIGRATIONS } = env as unknown as { TEST_MIGRATIONS: D1Migration[] };
await applyD1Migrations(env.USAGE_DB, TEST_MIGRATIONS);
