/**
 * Profiles the proxy's request path in Node: the same Hono handler as the Worker (`createApp()`),
 * driven in-process with no network, against a stub upstream (`globalThis.fetch` replaced) that
 * answers at once with a canned OpenAI reply. Each scenario is timed for the proxy and for a bare
 * pass-through handler (`(req) => fetch(upstreamUrl, req)`) through the same stub, so the
 * difference is what the proxy itself costs per request. Node is not workerd (its Headers,
 * Request, Response and streams are JavaScript, not C++), so absolute figures differ from the
 * Worker's; the proxy's own JavaScript and where its time goes are what this measures.
 *
 *   npx tsx bench/profile.ts [--requests 20000] [--rounds 5] [--warmup 3000] [--cpu-prof] [--interval 50] [--top 25]
 *
 * `--cpu-prof` samples scenarios 1 and 2 (proxy only) with node:inspector's profiler, prints the
 * top self-time functions (file:line, source-mapped for src/), and writes the `.cpuprofile` files
 * (loadable in Chrome DevTools) to the system temp directory.
 *
 * Scenarios: (1) POST /v1/chat/completions, (2) the same with `stream: true` (20 SSE chunks),
 * (3) POST / (the seed route), (4) an OPTIONS preflight, (5) = (1) with a 3-origin ALLOWED_ORIGINS
 * and an allowed `Origin` (exact entry), (5b) the same with an `Origin` matched by a wildcard entry.
 * Each response body is read to the end. The stub upstream ignores the request body and the abort
 * signal, as a real upstream's cost would fall on the runtime, not on JavaScript: so the proxy's
 * column includes its reading of the request body (bodyLimit) but neither arm pays for sending it.
 *
 * Nothing Workers-only is stubbed: every scenario sends JSON bodies with a Content-Length, so the
 * body limit reads them into memory and never reaches `FixedLengthStream` (non-JSON uploads only).
 * `console.log` is silenced while timing; the log line is still built and stringified.
 *
 * This file parses the arguments and runs the scenarios; the pieces are in bench/profile/: `env.ts` (the
 * Worker's env), `upstream.ts` (the stub upstream), `client.ts` (the client's requests), `scenarios.ts`,
 * `arms.ts` (proxy and bare), `timing.ts`, `report.ts` (the table), `cpu-profile.ts` and `cpu-report.ts`.
 */
import { parseArgs } from "node:util";
import { createApp } from "../src/app";
import { bareArm, proxyArm } from "./profile/arms";
import { cpuProfile } from "./profile/cpu-profile";
import { analyse } from "./profile/cpu-report";
import { printHeading, printRow } from "./profile/report";
import { SCENARIOS } from "./profile/scenarios";
import { measure, quietly } from "./profile/timing";
import { installStubUpstream } from "./profile/upstream";

const { values: args } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    rounds: { type: "string", default: "5" },
    warmup: { type: "string", default: "3000" },
    "cpu-prof": { type: "boolean", default: false },
    interval: { type: "string", default: "50" },
    top: { type: "string", default: "25" },
  },
  strict: true,
});
const positive = (name: string, raw: string | undefined): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer (got ${raw})`);
  return n;
};
const REQUESTS = positive("requests", args.requests);
const ROUNDS = positive("rounds", args.rounds);
const WARMUP = positive("warmup", args.warmup);
const SAMPLING_INTERVAL_US = positive("interval", args.interval);
const TOP = positive("top", args.top);

async function main(): Promise<void> {
  installStubUpstream();
  const proxyFor = proxyArm(createApp());
  const timing = { requests: REQUESTS, rounds: ROUNDS, warmup: WARMUP };
  printHeading(timing);
  for (const scenario of SCENARIOS) {
    const figures = await quietly(() => measure(scenario, { bare: bareArm, proxy: proxyFor(scenario.env) }, timing));
    printRow(scenario, figures);
  }

  if (args["cpu-prof"]) {
    const sampling = { requests: REQUESTS, warmup: WARMUP, intervalUs: SAMPLING_INTERVAL_US };
    for (const scenario of SCENARIOS.slice(0, 2)) {
      const { profile, file } = await quietly(() => cpuProfile(proxyFor(scenario.env), scenario, sampling));
      analyse(profile, REQUESTS, scenario.name, TOP);
      console.log(`\n  profile written to ${file}`);
    }
  }
}

await main();
