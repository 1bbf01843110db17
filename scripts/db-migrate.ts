/**
 * `npm run db:migrate -- [--remote] [--persist-to DIR]`: applies migrations/ to the usage ledger
 * (`USAGE_DB`): the local database `wrangler dev` uses, or with `--remote` the deployed one.
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { migrateRemote } from "./lib/remote-d1";

const ROOT = resolve(import.meta.dirname, "..");

const USAGE = `Usage: npm run db:migrate -- [--remote] [--persist-to DIR]

Applies the migrations in migrations/ to the usage ledger (the D1 database bound as USAGE_DB).
  --remote       the deployed database on Cloudflare (default: the local one that wrangler dev uses)
  --persist-to   the local state directory, as given to wrangler dev --persist-to (default: .wrangler/state)`;

function main(): void {
  let values: { remote?: boolean; "persist-to"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        remote: { type: "boolean" },
        "persist-to": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    fail(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.remote && values["persist-to"] !== undefined) fail("--persist-to is for the local database, not --remote");

  if (values.remote) {
    // The deployed database's id is not in wrangler.jsonc (the first deploy creates it): looked up by name.
    migrateRemote().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
    return;
  }
  const args = [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "d1", "migrations", "apply", "USAGE_DB"];
  args.push("--local");
  if (values["persist-to"] !== undefined) args.push("--persist-to", resolve(values["persist-to"]));
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  child.once("error", (error) => fail(`could not start wrangler: ${error.message}`));
  child.once("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));
}

function fail(message: string): never {
  process.stderr.write(`db:migrate: ${message}\n`);
  process.exit(1);
}

main();
