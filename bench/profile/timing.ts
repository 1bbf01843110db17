/**
 * Timing: one checked request per arm, a warm-up, then rounds of sequential requests per arm in
 * alternating order, each response read to the end; µs per request.
 */

import { concatBytes } from "../../src/lib/bytes";
import type { Handler } from "./arms";
import type { Scenario } from "./scenarios";
import { answerWith, recordCalls } from "./upstream";

export type TimingOptions = { requests: number; rounds: number; warmup: number };
/** µs per request of each round, per arm. */
export type Figures = { bare: number[]; proxy: number[] };

const decoder = new TextDecoder();

/** Reads the whole body; returns the number of chunks read. */
async function drain(response: Response, stream: boolean): Promise<number> {
  if (response.body === null) return 0;
  if (!stream) {
    await response.arrayBuffer();
    return 1;
  }
  const reader = response.body.getReader();
  let chunks = 0;
  for (;;) {
    const { done } = await reader.read();
    if (done) return chunks;
    chunks++;
  }
}

/** Mean µs per request over `n` sequential requests. */
export async function run(handler: Handler, scenario: Scenario, n: number): Promise<number> {
  answerWith(scenario.upstream);
  const stream = scenario.chunks !== undefined;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const response = await handler(scenario.request());
    if (response.status !== scenario.status) {
      throw new Error(`${scenario.name}: status ${response.status}: ${await response.text()}`);
    }
    await drain(response, stream);
  }
  return Number(process.hrtime.bigint() - start) / n / 1000;
}

/** One request with everything recorded and checked; throws on a wrong answer. */
async function verify(handler: Handler, scenario: Scenario, arm: string): Promise<void> {
  answerWith(scenario.upstream);
  recordCalls(true);
  try {
    const response = await handler(scenario.request());
    const chunks: Uint8Array[] = [];
    if (response.body !== null) {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
      }
    }
    const body = concatBytes(chunks);
    if (response.status !== scenario.status) {
      throw new Error(`${scenario.name} (${arm}): status ${response.status}: ${decoder.decode(body)}`);
    }
    if (scenario.chunks !== undefined && chunks.length !== scenario.chunks) {
      throw new Error(`${scenario.name} (${arm}): ${chunks.length} chunks, expected ${scenario.chunks}`);
    }
    if (arm === "proxy") {
      const problem = scenario.check(response, body);
      if (problem !== undefined) throw new Error(`${scenario.name}: ${problem}`);
    }
  } finally {
    recordCalls(false);
  }
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/** Checks both arms, warms them up, then times `rounds` rounds of bare and proxy in alternating order (AB BA AB …). */
export async function measure(
  scenario: Scenario,
  arms: { bare: Handler; proxy: Handler },
  { requests, rounds, warmup }: TimingOptions,
): Promise<Figures> {
  const { bare, proxy } = arms;
  await verify(bare, scenario, "bare");
  await verify(proxy, scenario, "proxy");
  await run(bare, scenario, warmup);
  await run(proxy, scenario, warmup);
  const perRound = Math.max(1, Math.round(requests / rounds));
  const figures: Figures = { bare: [], proxy: [] };
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      figures.bare.push(await run(bare, scenario, perRound));
      figures.proxy.push(await run(proxy, scenario, perRound));
    } else {
      figures.proxy.push(await run(proxy, scenario, perRound));
      figures.bare.push(await run(bare, scenario, perRound));
    }
  }
  return figures;
}

/** Runs `body` with `console.log` silenced: the proxy's log line is still built and stringified, just not written. */
export async function quietly<T>(body: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = () => {};
  try {
    return await body();
  } finally {
    // Every request's log line is written in `waitUntil`, a few ticks after its response's last chunk was read.
    await new Promise((resolve) => setImmediate(resolve));
    console.log = log;
  }
}
