/**
 * The CPU profile's report: self time by kind (src/, hono, bench/, runtime…), time charged to the
 * nearest src/, hono or bench/ frame, and the top functions as `name file:line`, source-mapped for src/.
 */
import type { Profiler, Runtime } from "node:inspector";
import { findSourceMap, type SourceMap } from "node:module";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT } from "./env";
import { fmt } from "./report";

type Sample = { self: number; label: string; kind: Kind };
type Kind = "src" | "hono" | "undici" | "streams" | "node" | "harness" | "vm" | "other";

const SRC_URL = new URL("../../src/", import.meta.url).href;
const sourceMaps = new Map<string, SourceMap | undefined>();

function classify(frame: Runtime.CallFrame): Kind {
  const { url, functionName } = frame;
  if (url.startsWith(SRC_URL)) return "src";
  if (url.includes("/node_modules/hono/")) return "hono";
  if (url.includes("/bench/")) return "harness";
  if (url.includes("undici")) return "undici";
  if (url.startsWith("node:internal/webstreams")) return "streams";
  if (url.startsWith("node:")) return "node";
  if (url === "" && functionName.startsWith("(")) return "vm";
  return "other";
}

/** `name file:line`, source-mapped for src/ (tsx compiles it), relative to the repo. */
function label(frame: Runtime.CallFrame): string {
  const name = frame.functionName || "(anonymous)";
  if (frame.url === "") return name;
  let file = frame.url;
  let line = frame.lineNumber + 1;
  if (file.startsWith("file:")) {
    if (!sourceMaps.has(file)) sourceMaps.set(file, findSourceMap(file) ?? findSourceMap(fileURLToPath(file)));
    const entry = sourceMaps.get(file)?.findEntry(frame.lineNumber, frame.columnNumber);
    if (entry !== undefined && "originalLine" in entry) {
      file = entry.originalSource;
      line = entry.originalLine + 1;
    }
    if (file.startsWith("file:")) file = relative(ROOT, fileURLToPath(file)).replace(/^node_modules\//, "");
  }
  return `${name} ${file}:${line}`;
}

/** Prints the report of `profile`, sampled over `requests` requests, with tables of the `top` functions. */
export function analyse(profile: Profiler.Profile, requests: number, title: string, top: number): void {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const total = profile.endTime - profile.startTime;

  const own = (kind: Kind) => kind === "src" || kind === "hono";
  const charged = (kind: Kind) => own(kind) || kind === "harness";
  const selfBy = new Map<string, Sample>();
  const inclusiveBy = new Map<string, Sample>();
  const overallBy = new Map<string, Sample>();
  const kinds = new Map<Kind, number>();
  const labels = new Map<number, { label: string; kind: Kind }>();
  const describe = (id: number) => {
    let known = labels.get(id);
    if (known === undefined) {
      const frame = nodes.get(id)?.callFrame;
      known = frame === undefined ? { label: "?", kind: "other" } : { label: label(frame), kind: classify(frame) };
      labels.set(id, known);
    }
    return known;
  };
  const add = (map: Map<string, Sample>, key: { label: string; kind: Kind }, time: number) => {
    const entry = map.get(key.label);
    if (entry === undefined) map.set(key.label, { self: time, label: key.label, kind: key.kind });
    else entry.self += time;
  };

  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] ?? 0;
    // timeDeltas[i + 1] is the time from this sample to the next: the time this stack was on the CPU.
    const time = deltas[i + 1] ?? total / Math.max(1, samples.length);
    const me = describe(id);
    kinds.set(me.kind, (kinds.get(me.kind) ?? 0) + time);
    add(overallBy, me, time);
    if (own(me.kind)) add(selfBy, me, time);
    // Runtime time (Headers, Response, streams, URL, …) charged to the nearest src/, hono or harness
    // caller: the stub upstream's and the client's work is the harness's, in both arms alike.
    let at: number | undefined = id;
    while (at !== undefined && !charged(describe(at).kind)) at = parent.get(at);
    if (at !== undefined) add(inclusiveBy, describe(at), time);
  }

  const perRequest = (time: number) => time / requests;
  const pct = (time: number) => `${((100 * time) / total).toFixed(1).padStart(5)}%`;
  console.log(`\n## CPU profile: ${title} (${requests} requests, ${(total / 1000).toFixed(0)} ms sampled)`);
  console.log("\nSelf time by kind (µs/request):");
  for (const [kind, time] of [...kinds].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${kind.padEnd(8)} ${fmt(perRequest(time), 2)} µs  ${pct(time)}`);
  }
  const table = (heading: string, map: Map<string, Sample>, limit = top) => {
    console.log(`\n${heading}`);
    for (const entry of [...map.values()].sort((a, b) => b.self - a.self).slice(0, limit)) {
      console.log(`  ${fmt(perRequest(entry.self), 2)} µs ${pct(entry.self)}  ${entry.label}`);
    }
  };
  const chargedTo = (kind: Kind) =>
    [...inclusiveBy.values()].filter((entry) => entry.kind === kind).reduce((sum, entry) => sum + entry.self, 0);
  const [src, hono, harness] = [chargedTo("src"), chargedTo("hono"), chargedTo("harness")];
  console.log("\nSelf + runtime callees, charged to the nearest src/, hono or bench/ frame (µs/request):");
  console.log(`  src/     ${fmt(perRequest(src), 2)} µs  ${pct(src)}`);
  console.log(`  hono     ${fmt(perRequest(hono), 2)} µs  ${pct(hono)}`);
  console.log(
    `  bench/   ${fmt(perRequest(harness), 2)} µs  ${pct(harness)}  (client Request, stub upstream, reading: both arms)`,
  );
  const rest = total - src - hono - harness;
  console.log(`  neither  ${fmt(perRequest(rest), 2)} µs  ${pct(rest)}  (GC, microtasks, timers, idle)`);
  table(`Top ${top} self time, src/ and hono (µs/request):`, selfBy);
  table(
    `Top ${top} self + runtime callees (Headers, URL, streams, … charged to the nearest src/, hono or bench/ frame):`,
    inclusiveBy,
  );
  const limit = Math.min(top, 15);
  table(`Top ${limit} self time, everything (runtime included):`, overallBy, limit);
}
