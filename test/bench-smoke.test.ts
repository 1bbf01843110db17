import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/wrangler-dev";

const out = mkdtempSync(join(tmpdir(), "bench-smoke-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

type Stat = { median: number; min: number; max: number };

// The benchmark's figures are printed, never asserted: this only checks that a quick run produces every one of them.
it("npm run bench -- --quick runs and produces every figure", { timeout: 180_000 }, async () => {
  await promisify(execFile)(
    process.execPath,
    [join(ROOT, "node_modules/tsx/dist/cli.mjs"), join(ROOT, "bench/run.ts"), "--quick", "--out", out],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" } },
  );
  const results = JSON.parse(readFileSync(join(out, "results/latest.json"), "utf8"));
  const figures = ["rps10", "rps50", "latencyP50", "latencyP99", "ttfbMs", "ttftMs", "chunkGapP50", "chunkGapP99"];
  for (const arm of ["A", "B", "C", "D", "E", "F"]) {
    const stats: Record<string, Stat> = results.arms[arm];
    for (const figure of [...figures, ...(arm === "A" ? [] : ["cpuMsPerRequest"])]) {
      expect(Number.isFinite(stats[figure]?.median), `${arm}.${figure}`).toBe(true);
    }
  }
  for (const arm of ["B", "C"]) {
    for (const figure of ["streams1MiB", "streams10MiB", "perStreamKiB", "growthMiB"]) {
      expect(Number.isFinite(results.memory[arm][figure]), `${arm} memory ${figure}`).toBe(true);
    }
  }
  // The ledger kept a row for every request served under load.
  expect(results.ledger.served).toBeGreaterThan(0);
  expect(results.ledger.rows).toBe(results.ledger.served);
  expect(results.streamBytesIdentical.bytes).toBeGreaterThan(0);
  expect(typeof results.streamBytesIdentical.C).toBe("boolean");
  expect(results.bundle.gzipBytes).toBeGreaterThan(0);
  expect(readFileSync(join(out, "RESULTS.md"), "utf8")).toContain("## Targets");
});
