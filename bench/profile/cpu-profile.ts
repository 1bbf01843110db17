/** Sampling: node:inspector's CPU profiler over the proxy's requests of one scenario, the profile also written to a file. */
import { writeFileSync } from "node:fs";
import type { Profiler } from "node:inspector";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Handler } from "./arms";
import type { Scenario } from "./scenarios";
import { run } from "./timing";

export type SamplingOptions = { requests: number; warmup: number; intervalUs: number };

/**
 * Samples `handler` over `requests` requests of `scenario`, after a warm-up; the profile is also
 * written to a `.cpuprofile` file (loadable in Chrome DevTools) in the system temp directory.
 */
export async function cpuProfile(
  handler: Handler,
  scenario: Scenario,
  { requests, warmup, intervalUs }: SamplingOptions,
): Promise<{ profile: Profiler.Profile; file: string }> {
  const session = new Session();
  session.connect();
  try {
    await run(handler, scenario, warmup);
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: intervalUs });
    await session.post("Profiler.start");
    await run(handler, scenario, requests);
    const { profile } = await session.post("Profiler.stop");
    const file = join(tmpdir(), `proxy-${scenario.name.replace(/[^a-z0-9]+/gi, "-")}-${process.pid}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return { profile, file };
  } finally {
    session.disconnect();
  }
}
