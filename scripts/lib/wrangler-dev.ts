import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** A `wrangler dev` process serving the proxy on 127.0.0.1. */
export type DevProxy = {
  /** e.g. `http://127.0.0.1:43123` */
  url: string;
  /** Everything wrangler and the Worker printed so far. */
  output: () => string;
  /** The local state (D1, Durable Objects) this process keeps, for `--persist-to`. */
  persistDir: string;
  stop: () => Promise<void>;
};

/** No metrics and no fetch of Cloudflare's `cf` object: nothing leaves the machine. */
const QUIET = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

/** The project root. */
export const ROOT = resolve(import.meta.dirname, "../..");

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null ? done(address.port) : fail(new Error("no port")),
      );
    });
  });
}

/**
 * Starts the real `wrangler dev` with `vars` (secrets included, passed as a user would: in an env
 * file, never on the command line) and resolves once it serves. Makes no outbound calls: metrics
 * and Cloudflare's `cf` fetch are switched off.
 *
 * @example
 * const proxy = await startWranglerDev({ OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: "sk-test" });
 */
export async function startWranglerDev(
  vars: Record<string, string>,
  options: { port?: number; withDevVars?: boolean; https?: boolean } = {},
): Promise<DevProxy> {
  const port = options.port ?? (await freePort());
  const inspectorPort = await freePort();
  const persist = mkdtempSync(join(tmpdir(), "proxy-e2e-"));
  const envFile = join(persist, ".dev.vars");
  // `--env-file` replaces `.dev.vars`; with `withDevVars` the developer's own file comes first and `vars` override it.
  const devVars = join(ROOT, ".dev.vars");
  const base = options.withDevVars && existsSync(devVars) ? `${readFileSync(devVars, "utf8")}\n` : "";
  const lines = Object.entries(vars).map(([name, value]) => `${name}=${dotenvValue(name, value)}\n`);
  writeFileSync(envFile, base + lines.join(""));
  const args = [
    join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    String(inspectorPort),
    "--persist-to",
    persist,
    "--show-interactive-dev-session=false",
    "--log-level",
    "log",
    "--env-file",
    envFile,
    // wrangler dev's own self-signed certificate: for clients that insist on https or wss.
    ...(options.https ? ["--local-protocol", "https"] : []),
  ];
  // The usage ledger's tables, as `npm run db:migrate` makes them.
  execFileSync(
    process.execPath,
    [
      join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "d1",
      "migrations",
      "apply",
      "USAGE_DB",
      "--local",
      "--persist-to",
      persist,
    ],
    { cwd: ROOT, stdio: "ignore", env: { ...process.env, ...QUIET, CI: "true" } },
  );
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      NO_COLOR: "1",
      CI: "true",
    },
  });
  let output = "";
  const url = `${options.https ? "https" : "http"}://127.0.0.1:${port}`;
  const stop = async () => {
    await stopProcess(child);
    rmSync(persist, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((ready, fail) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready on")) ready();
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code) => fail(new Error(`wrangler dev exited with ${code} before it was ready:\n${output}`)));
      setTimeout(() => fail(new Error(`wrangler dev was not ready within 30 s:\n${output}`)), 30_000).unref();
    });
    await waitForHealth(url);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, output: () => output, persistDir: persist, stop };
}

/** Resolves once `GET /health` answers; wrangler can say "Ready" a moment before it serves. */
export async function waitForHealth(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await healthStatus(`${url}/health`)) === 200) return;
    await new Promise((next) => setTimeout(next, 20));
  }
  throw new Error(`${url}/health did not answer`);
}

/** The status of a GET, 0 when nothing answers; wrangler dev's own self-signed certificate is accepted. */
function healthStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const get = url.startsWith("https:") ? httpsGet : httpGet;
    const request = get(url, { rejectUnauthorized: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("error", () => resolve(0));
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (child.exitCode !== null || pid === undefined) return Promise.resolve();
  return new Promise((done) => {
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-pid, signal);
      } catch {
        done(); // already gone
      }
    };
    const hard = setTimeout(() => kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(hard);
      done();
    });
    kill("SIGTERM");
  });
}

/**
 * A value as a dotenv line carries it unchanged: in single quotes (taken literally, so JSON keeps its double
 * quotes), or in double quotes when it holds a single quote.
 *
 * @throws Error for a value no dotenv quoting carries (a newline, or both kinds of quote).
 */
function dotenvValue(name: string, value: string): string {
  if (/[\r\n]/.test(value) || (value.includes("'") && value.includes('"'))) {
    throw new Error(`${name}: a .dev.vars value cannot hold a newline or both kinds of quote`);
  }
  return value.includes("'") ? `"${value}"` : `'${value}'`;
}
