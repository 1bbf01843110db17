/**
 * `npm run demo`: the chat page in examples/chat talking to the proxy, all on 127.0.0.1.
 *
 * By default it needs no key and no network: the fake OpenAI upstream answers. With `DEMO_UPSTREAM=openai` the
 * proxy uses the real key in `.dev.vars` and OpenAI itself. The page is served from its own origin, as it would
 * be in a real deployment, and the proxy allows exactly that origin.
 *
 * Offline, the page gets a session as a static page in production would: an offline stand-in for the Turnstile
 * widget (always passes, as Turnstile's test site key does), then `POST /session`, checked by a stand-in
 * siteverify; the page shows what is left of the session's daily budget.
 *
 * Ports: DEMO_PROXY_PORT (8787), DEMO_PAGE_PORT (8788), DEMO_UPSTREAM_PORT (8790), DEMO_TURNSTILE_PORT (8791).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { startFakeOpenAI } from "../tools/fake-openai/server";
import { startFakeTurnstile, TURNSTILE_TEST_KEYS } from "../tools/fake-turnstile/server";
import { startStaticServer } from "./lib/static-server";
import { ROOT, startWranglerDev } from "./lib/wrangler-dev";

type Stop = () => Promise<unknown>;

/** Everything started so far, stopped in reverse order on exit. */
const running: Stop[] = [];
let stopping = false;

async function main(): Promise<void> {
  const upstream = process.env.DEMO_UPSTREAM ?? "fake";
  if (upstream !== "fake" && upstream !== "openai") {
    fail(`DEMO_UPSTREAM must be "fake" or "openai", not "${upstream}".`);
  }
  const proxyPort = port("DEMO_PROXY_PORT", 8787);
  const pagePort = port("DEMO_PAGE_PORT", 8788);
  const upstreamPort = port("DEMO_UPSTREAM_PORT", 8790);
  const turnstilePort = port("DEMO_TURNSTILE_PORT", 8791);
  const real = upstream === "openai";
  if (real && !hasKey()) {
    fail(
      "DEMO_UPSTREAM=openai needs your OpenAI key in .dev.vars:\n" +
        "  cp .dev.vars.example .dev.vars\n" +
        "  then set OPENAI_API_KEY=sk-… in it and run `DEMO_UPSTREAM=openai npm run demo` again.",
    );
  }
  const ports: [string, number][] = [
    ["DEMO_PROXY_PORT", proxyPort],
    ["DEMO_PAGE_PORT", pagePort],
  ];
  if (!real) ports.push(["DEMO_UPSTREAM_PORT", upstreamPort], ["DEMO_TURNSTILE_PORT", turnstilePort]);
  if (new Set(ports.map(([, value]) => value)).size < ports.length) {
    fail(`The demo needs distinct ports: ${ports.map(([name, value]) => `${name}=${value}`).join(", ")}.`);
  }
  for (const [name, value] of ports) {
    if (!(await isFree(value))) fail(`Port ${value} on 127.0.0.1 is in use: stop what uses it, or set ${name}.`);
  }

  console.log(`Starting${real ? "" : " the fake OpenAI upstream,"} the proxy (wrangler dev) and the page server…`);
  const origins = `http://127.0.0.1:${pagePort},http://localhost:${pagePort}`;
  let upstreamLine: string;
  let pageQuery = "";
  let startProxy: () => ReturnType<typeof startWranglerDev>;
  if (real) {
    upstreamLine = `OpenAI (${devVar("OPENAI_BASE_URL") ?? "https://api.openai.com/v1"}), with the key in .dev.vars`;
    startProxy = () => startWranglerDev({ ALLOWED_ORIGINS: origins }, { port: proxyPort, withDevVars: true });
  } else {
    const fake = await startFakeOpenAI({ port: upstreamPort, chunkGapMs: 40 });
    running.push(() => fake.close());
    const turnstile = await startFakeTurnstile({ port: turnstilePort });
    running.push(() => turnstile.close());
    upstreamLine = `the fake OpenAI upstream at ${fake.url} (offline, no key needed)\n  Turnstile  an offline stand-in at ${turnstile.url} (behaves like the test keys)`;
    pageQuery = `&turnstile=${encodeURIComponent(turnstile.scriptUrl)}`;
    startProxy = () =>
      startWranglerDev(
        {
          OPENAI_BASE_URL: fake.url,
          OPENAI_API_KEY: "sk-demo-not-a-real-key",
          ALLOWED_ORIGINS: origins,
          // Sessions for the page, as a static page in production gets them (see the README's "Pages with no backend").
          TURNSTILE_SECRET_KEY: TURNSTILE_TEST_KEYS.passSecret,
          TURNSTILE_SITE_KEY: TURNSTILE_TEST_KEYS.passSiteKey,
          TURNSTILE_SITEVERIFY_URL: turnstile.siteverifyUrl,
          PROXY_JWT_SECRET: randomBytes(32).toString("base64url"),
        },
        { port: proxyPort },
      );
  }
  const proxy = await startProxy();
  running.push(proxy.stop);
  const page = await startStaticServer({ root: join(ROOT, "examples/chat"), port: pagePort, host: "127.0.0.1" });
  running.push(page.close);
  if (stopping) return; // Ctrl-C came while starting

  console.log(`
  Chat page  ${page.url}/?proxy=${proxy.url}${pageQuery}
  Proxy      ${proxy.url}  (wrangler dev; allowed origins: ${origins})
  Upstream   ${upstreamLine}

Open the chat page in your browser. Ctrl-C to stop.`);
}

/** A port from the environment, or its default. */
function port(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`${name} must be a port number (1-65535), not "${value}".`);
  return n;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer()
      .once("error", () => done(false))
      .listen(port, "127.0.0.1", () => probe.close(() => done(true)));
  });
}

/** A variable's value in `.dev.vars` (quotes removed), or undefined. */
function devVar(name: string): string | undefined {
  const file = join(ROOT, ".dev.vars");
  if (!existsSync(file)) return undefined;
  const line = readFileSync(file, "utf8")
    .split(/\r?\n/)
    .find((l) => l.trim().startsWith(`${name}=`) || l.trim().startsWith(`${name} =`));
  const value = line
    ?.slice(line.indexOf("=") + 1)
    .trim()
    .replace(/^(["'])(.*)\1$/, "$2");
  return value || undefined;
}

/** `.dev.vars` sets OPENAI_API_KEY to something other than the example's placeholder. */
const hasKey = (): boolean => {
  const key = devVar("OPENAI_API_KEY");
  return key !== undefined && key !== "sk-...";
};

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

/** Stops everything (after a start in progress has finished, so that no wrangler is left behind) and exits. */
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log("\nStopping…");
  await started.catch(() => {});
  for (const stop of running.reverse()) await stop().catch((error: unknown) => console.error(error));
  process.exit(code);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void shutdown(0));

const started = main();
started.catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await shutdown(1);
});
