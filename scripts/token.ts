/**
 * `npm run token -- --sub alice [--ttl 1h] [--models gpt-4o-mini,gpt-4.1*] [--origin https://app.example.com]
 * [--rpm 30] [--tpd 200000]`: mints a client token signed with PROXY_JWT_SECRET (from the environment, else
 * from .dev.vars) and prints only the token, so `TOKEN=$(npm run -s token -- --sub alice)` works.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { mintToken } from "../src/middleware/client-auth/mint";
import { parseTtl } from "./lib/token";

const ROOT = resolve(import.meta.dirname, "..");

const USAGE = `Usage: npm run token -- --sub <subject> [--ttl 1h] [--models gpt-4o-mini,gpt-4.1*]
                       [--origin https://app.example.com] [--rpm 30] [--tpd 200000]

Prints an HS256 client token signed with PROXY_JWT_SECRET, taken from the environment or else from .dev.vars.
  --sub      who the token is for (required); its rate limit and log lines go by this name
  --ttl      lifetime: 30s, 15m, 1h or 7d (default 1h)
  --models   comma-separated model patterns the token may use
  --origin   the only browser origin the token may be used from
  --rpm      requests per minute, replacing the proxy's default for this subject
  --tpd      tokens per day`;

/** A mistake on the command line: reported with a pointer to the usage. */
class ArgumentError extends Error {}

async function main(): Promise<void> {
  const { values } = parseArguments();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.sub === undefined || values.sub.trim() === "") throw new ArgumentError("--sub is required");
  const options = {
    sub: values.sub,
    ttlSeconds: argument(() => parseTtl(values.ttl)),
    models: values.models === undefined ? undefined : list("--models", values.models),
    origin: values.origin,
    rpm: values.rpm === undefined ? undefined : positiveInteger("--rpm", values.rpm),
    tpd: values.tpd === undefined ? undefined : positiveInteger("--tpd", values.tpd),
  };
  const token = await mintToken({ secret: jwtSecret(), ...options });
  process.stdout.write(`${token}\n`);
}

function parseArguments() {
  return argument(() =>
    parseArgs({
      options: {
        sub: { type: "string" },
        ttl: { type: "string", default: "1h" },
        models: { type: "string" },
        origin: { type: "string" },
        rpm: { type: "string" },
        tpd: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }),
  );
}

/** Runs `parse`, turning what it throws into an `ArgumentError`. */
function argument<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new ArgumentError(error instanceof Error ? error.message : String(error));
  }
}

/** PROXY_JWT_SECRET from the environment, else from the project's .dev.vars. */
function jwtSecret(): string {
  const fromEnv = process.env.PROXY_JWT_SECRET?.trim();
  if (fromEnv) return fromEnv;
  const file = join(ROOT, ".dev.vars");
  const fromFile = existsSync(file) ? parseDevVars(readFileSync(file, "utf8")).PROXY_JWT_SECRET?.trim() : undefined;
  if (fromFile) return fromFile;
  throw new Error(
    "PROXY_JWT_SECRET is not set: export it, or add PROXY_JWT_SECRET=<at least 32 characters> to .dev.vars " +
      "(e.g. the output of `openssl rand -base64 32`)",
  );
}

/**
 * `KEY=VALUE` lines as wrangler reads `.dev.vars` (dotenv): `#` comments, optional `export`,
 * values in single, double or back quotes, `\n` in double quotes; an unquoted value ends at `#`.
 */
function parseDevVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([\w.-]+)\s*=\s*(.*)$/.exec(line);
    if (match === null) continue;
    const [, name = "", rest = ""] = match;
    const quoted = /^(["'`])(.*)\1\s*(?:#.*)?$/.exec(rest);
    if (quoted !== null) {
      const [, quote, value = ""] = quoted;
      vars[name] = quote === '"' ? value.replaceAll("\\n", "\n").replaceAll("\\r", "\r") : value;
    } else {
      vars[name] = (rest.split("#")[0] ?? "").trim();
    }
  }
  return vars;
}

function list(flag: string, raw: string): string[] {
  const items = raw
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  if (items.length === 0) throw new ArgumentError(`${flag} must list at least one model pattern`);
  return items;
}

function positiveInteger(flag: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value <= 0) {
    throw new ArgumentError(`${flag} must be a positive integer (got "${raw}")`);
  }
  return value;
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof ArgumentError ? "\nRun `npm run token -- --help` for the options.\n" : "";
  process.stderr.write(`token: ${message}\n${hint}`);
  process.exit(1);
});
