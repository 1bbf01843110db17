import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { relative } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { ROOT } from "../scripts/lib/wrangler-dev";
import { buildBundle, LIMITS_OUT_OF_REACH, REQUEST_PATH_ONLY, startFakeUpstream, startWorker } from "./lib/arms";
import { inspectWorker } from "./lib/inspector";

const { values: args } = parseArgs({
  options: {
    arm: { type: "string", default: "D" },
    seconds: { type: "string", default: "4" },
    top: { type: "string", default: "30" },
  },
});
const INSPECTOR_PORT = 9239;
const CHAT_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello, benchmark" }] });

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number } };
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[] };

async function main(): Promise<void> {
  const bundle = buildBundle();
  const fake = await startFakeUpstream("0");
  const upstream = { OPENAI_BASE_URL: `${fake.origin}/v1`, OPENAI_API_KEY: "sk-bench" };
  const bindings = { ...upstream, ...(args.arm === "C" ? REQUEST_PATH_ONLY : LIMITS_OUT_OF_REACH) };
  const arm = await startWorker(`profile-${args.arm}`, bundle.path, bindings, "1", {
    inspectorPort: INSPECTOR_PORT,
  });
  try {
    const load = (seconds: number) =>
      autocannon({
        url: `${arm.url}/v1/chat/completions`,
        method: "POST",
        headers: { "content-type": "application/json", authorization: arm.authorization },
        body: CHAT_BODY,
        connections: 50,
        duration: seconds,
      });
    await load(2); // warm-up
    const inspector = await inspectWorker(INSPECTOR_PORT, `profile-${args.arm}`);
    await inspector.send("Profiler.enable");
    await inspector.send("Profiler.setSamplingInterval", { interval: 100 });
    await inspector.send("Profiler.start");
    const result = await load(Number(args.seconds));
    const { profile } = (await inspector.send("Profiler.stop")) as { profile: Profile };
    inspector.close();
    report(profile, result.requests.total, `${bundle.path}.map`, Number(args.top));
  } finally {
    await arm.stop();
    await fake.stop();
  }
}

/** Self time per request of the top functions, `name src/file.ts:line` where the source map knows it. */
function report(profile: Profile, requests: number, mapPath: string, top: number): void {
  const map = new SourceMap(JSON.parse(readFileSync(mapPath, "utf8")));
  const self = new Map<number, number>();
  for (const [i, node] of profile.samples.entries())
    self.set(node, (self.get(node) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const byLabel = new Map<string, number>();
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  let total = 0;
  for (const [id, us] of self) {
    total += us;
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) continue;
    let where = frame.url === "" ? "" : (frame.url.split("/").pop() ?? "");
    if (frame.url.endsWith("index.js")) {
      const entry = map.findEntry(frame.lineNumber, frame.columnNumber);
      if ("originalSource" in entry && entry.originalSource !== undefined) {
        where = `${relative(ROOT, entry.originalSource.replace(/^file:\/\//, ""))}:${entry.originalLine + 1}`;
      }
    }
    const label = `${frame.functionName || "(anonymous)"}${where === "" ? "" : ` ${where}`}`;
    byLabel.set(label, (byLabel.get(label) ?? 0) + us);
  }
  process.stdout.write(
    `arm ${args.arm}: ${requests} requests in ${args.seconds} s, ${(total / requests).toFixed(0)} µs sampled per request\n\n`,
  );
  process.stdout.write("µs/request  function\n");
  for (const [label, us] of [...byLabel].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${(us / requests).toFixed(1).padStart(10)}  ${label}\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
