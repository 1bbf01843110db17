/**
 * The Worker's environment for the profile: `wrangler.jsonc`'s vars plus the secret, with the
 * features that need storage switched off (no Durable Object and no D1 in Node).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The Worker's bindings as the profile passes them: plain string vars (the app reads them as its `Env`). */
export type Bindings = Readonly<Record<string, string>>;

/** The repository's root directory. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** `wrangler.jsonc`'s `vars`: full-line comments and trailing commas removed, then plain JSON. */
function wranglerVars(): Record<string, string> {
  const text = readFileSync(join(ROOT, "wrangler.jsonc"), "utf8")
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("//"))
    .join("\n")
    .replace(/,(\s*[}\]])/g, "$1");
  const vars = (JSON.parse(text) as { vars?: Record<string, string> }).vars;
  if (vars === undefined) throw new Error("wrangler.jsonc has no vars");
  return vars;
}

export const VARS = wranglerVars();
export const API_KEY = "sk-bench-not-a-real-key-0123";
/** The request path alone, as the benchmark's arm C: no Durable Object and no D1 in Node. */
const NO_STORAGE = { RATE_LIMIT_RPM: "0", MAX_CONCURRENT_STREAMS: "0", RECORD_USAGE: "false" };

/** A fresh env object (the app caches its parsed config per env object, so make one per scenario). */
export const makeEnv = (overrides: Record<string, string> = {}): Bindings => ({
  ...VARS,
  ...NO_STORAGE,
  OPENAI_API_KEY: API_KEY,
  ...overrides,
});
