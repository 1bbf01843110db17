/**
 * `npm run deploy`: deploys the proxy as it is in the repository, with no file to edit first (after `wrangler
 * login` and the secrets). Wrangler creates the D1 database on the first deploy (its `database_id` is left out of
 * wrangler.jsonc on purpose) but not queues: this creates the usage queue when it is missing, deploys, then
 * applies migrations/ to the deployed database. Run again, it changes only what changed.
 *
 * Extra arguments go to `wrangler deploy` (e.g. `npm run deploy -- --dry-run`).
 */
import { migrateRemote, wrangler } from "./lib/remote-d1";

const QUEUE = "openai-workers-proxy-usage";

async function main(): Promise<void> {
  const extra = process.argv.slice(2);
  const dryRun = extra.includes("--dry-run");
  if (!dryRun) {
    const created = await wrangler(["queues", "create", QUEUE], true);
    if (created.code === 0) console.log(`Created the queue ${QUEUE}.`);
    else if (/already (exists|taken)/i.test(created.output)) console.log(`The queue ${QUEUE} exists.`);
    else throw new Error(`could not create the queue ${QUEUE}:\n${created.output}`);
  }
  const deployed = await wrangler(["deploy", ...extra]);
  if (deployed.code !== 0) throw new Error("wrangler deploy failed (see above)");
  if (dryRun) return;
  await migrateRemote();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
