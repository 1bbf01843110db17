/** The timing table: its heading and one row per scenario, µs per request (median of rounds, proxy spread). */
import type { Scenario } from "./scenarios";
import { type Figures, median, type TimingOptions } from "./timing";

/** A figure right-aligned in 7 columns. */
export const fmt = (n: number, digits = 1): string => n.toFixed(digits).padStart(7);
const spread = (values: number[]) => `${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)}`;

export function printHeading({ requests, rounds, warmup }: TimingOptions): void {
  console.log(
    `Node ${process.version}, ${requests} requests per arm in ${rounds} rounds after ${warmup} warm-up; ` +
      "µs per request, median of rounds [min–max]; bare = (req) => fetch(upstreamUrl, req) through the same stub.\n",
  );
  console.log(
    `${"scenario".padEnd(46)} ${"bare".padStart(7)} ${"proxy".padStart(7)} ${"added".padStart(7)} ${"×".padStart(5)}  proxy spread     per chunk (proxy, added)`,
  );
}

export function printRow(scenario: Scenario, figures: Figures): void {
  const bare = median(figures.bare);
  const proxy = median(figures.proxy);
  const perChunk =
    scenario.chunks === undefined
      ? ""
      : `${(proxy / scenario.chunks).toFixed(2)} µs, ${((proxy - bare) / scenario.chunks).toFixed(2)} µs`;
  console.log(
    `${scenario.name.padEnd(46)} ${fmt(bare)} ${fmt(proxy)} ${fmt(proxy - bare)} ${(proxy / bare).toFixed(2).padStart(5)}  ${`[${spread(figures.proxy)}]`.padEnd(16)} ${perChunk}`,
  );
}
