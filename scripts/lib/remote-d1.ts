import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");
const DATABASE = "openai-workers-proxy-usage";
const ENV = { ...process.env, WRANGLER_SEND_METRICS: "false" };

/** Runs wrangler with `args`, its output shown; resolves with its exit code and what it printed. */
export function wrangler(args: string[], quiet = false): Promise<{ code: number; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), ...args], {
      cwd: ROOT,
      env: ENV,
      stdio: ["inherit", "pipe", "pipe"],
    });
    let output = "";
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk;
        if (!quiet) process.stdout.write(chunk);
      });
    }
    child.once("error", (error) => fail(new Error(`could not start wrangler: ${error.message}`)));
    child.once("close", (code) => done({ code: code ?? 1, output }));
  });
}

/**
 * Applies migrations/ to the deployed database. `wrangler d1 migrations apply --remote` needs the database's
 * id in a config, and wrangler.jsonc leaves it out (so that the first deploy creates the database): the id is
 * looked up by name and given to wrangler in a throwaway config beside wrangler.jsonc.
 */
export async function migrateRemote(): Promise<void> {
  const listed = await wrangler(["d1", "list", "--json"], true);
  const databases =
    listed.code === 0
      ? (JSON.parse(listed.output.slice(listed.output.indexOf("["))) as { uuid: string; name: string }[])
      : [];
  const id = databases.find((database) => database.name === DATABASE)?.uuid;
  if (id === undefined)
    throw new Error(`the database ${DATABASE} was not found after the deploy; run \`npx wrangler d1 list\``);
  const config = join(ROOT, ".wrangler-migrate.json");
  writeFileSync(
    config,
    JSON.stringify({
      name: "openai-workers-proxy",
      compatibility_date: "2026-05-01",
      d1_databases: [{ binding: "USAGE_DB", database_name: DATABASE, database_id: id, migrations_dir: "migrations" }],
    }),
  );
  try {
    const migrated = await wrangler(["d1", "migrations", "apply", "USAGE_DB", "--remote", "--config", config]);
    if (migrated.code !== 0)
      throw new Error("the migrations could not be applied (see above); run `npm run deploy` again");
  } finally {
    rmSync(config, { force: true });
  }
}
