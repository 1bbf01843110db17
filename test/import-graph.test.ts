import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../scripts/lib/wrangler-dev";

/** Every module under src/ (tests and test helpers left out) → what it imports: other modules by path, packages by name. */
function importGraph(): Map<string, Set<string>> {
  const src = join(ROOT, "src");
  const files: string[] = [];
  (function walk(dir: string) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "testing") walk(path);
      } else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) files.push(path);
    }
  })(src);
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const imports = new Set<string>();
    const code = readFileSync(file, "utf8");
    // Type-only imports count: they still tie one module to another.
    for (const match of code.matchAll(/(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(["']([^"']+)["']\)/g)) {
      const specifier = match[1] ?? match[2] ?? "";
      if (!specifier.startsWith(".")) {
        imports.add(specifier);
        continue;
      }
      const base = join(dirname(file), specifier);
      const target = [`${base}.ts`, join(base, "index.ts")].find((candidate) => files.includes(candidate));
      if (target === undefined) throw new Error(`${relative(src, file)} imports ${specifier}, which is not a module`);
      imports.add(relative(src, target));
    }
    graph.set(relative(src, file), imports);
  }
  return graph;
}

const graph = importGraph();

/** Every module and package `module` reaches through its imports. */
function reach(module: string): Set<string> {
  const seen = new Set<string>();
  const stack = [module];
  while (stack.length > 0) {
    for (const next of graph.get(stack.pop() ?? "") ?? []) {
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(next);
    }
  }
  return seen;
}

const under = (folder: string) => [...graph.keys()].filter((module) => module.startsWith(`${folder}/`));

describe("the import graph under src/", () => {
  it("keeps config/ at the bottom: it imports nothing from the pipeline", () => {
    const pipeline = /^(middleware|proxy|routes|usage|limits)\//;
    const offending = under("config").flatMap((module) =>
      [...(graph.get(module) ?? [])].filter((target) => pipeline.test(target)).map((target) => `${module} → ${target}`),
    );
    expect(under("config").length).toBeGreaterThan(0);
    expect(offending).toEqual([]);
  });

  it("keeps Hono out of limits/ and usage/, directly or through what they import", () => {
    const offending = [...under("limits"), ...under("usage")].filter((module) => reach(module).has("hono"));
    expect(under("usage").length).toBeGreaterThan(0);
    expect(offending).toEqual([]);
  });

  it("has no import cycles", () => {
    const cycles = [...graph.keys()].filter((module) => reach(module).has(module));
    expect(cycles).toEqual([]);
  });
});
