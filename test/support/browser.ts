import { existsSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";
import { ROOT } from "../../scripts/lib/wrangler-dev";

/** Debian's Chromium; the tests never download a browser of their own. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether the browser tests can run here. In CI they must: a missing browser fails there. */
export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must install it (apt-get install -y chromium)`);
  console.warn(`Browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
  return false;
}

/** Headless Chromium with a fresh profile and none of its background traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** The official `openai` SDK bundled for the page, exposing `globalThis.OpenAI`. */
export async function openaiBrowserBundle(): Promise<string> {
  const result = await build({
    stdin: { contents: 'import OpenAI from "openai"; globalThis.OpenAI = OpenAI;', resolveDir: ROOT, loader: "js" },
    bundle: true,
    format: "iife",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0]?.text ?? "";
}

/** Where tests leave artifacts (screenshots); ignored by git. */
export const RESULTS_DIR = join(ROOT, "test-results");
