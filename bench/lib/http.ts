import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";

/** One keep-alive pool for every sender, so connection set-up is not measured. */
export const agent = new Agent({ keepAlive: true, maxSockets: 1024 });

export type Timed = {
  status: number;
  /** ms from send to response headers. */
  headersMs: number;
  /** ms from send to the last byte. */
  totalMs: number;
  /** Arrival time (ms from send) and bytes of every chunk the socket delivered. */
  chunks: { at: number; bytes: Buffer }[];
};

/**
 * Sends one request and times it: headers, every chunk, the end. Rejects on a network error. A
 * request sent on a kept-alive socket that the server closed meanwhile (ECONNRESET on a reused
 * socket, the race Node's documentation describes) is sent once more, on a fresh one.
 */
export function timedRequest(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
  keepChunks = false,
): Promise<Timed> {
  return sendTimed(url, init, keepChunks).catch((error: NodeJS.ErrnoException & { reusedSocket?: boolean }) => {
    if (error.code === "ECONNRESET" && error.reusedSocket === true) return sendTimed(url, init, keepChunks);
    throw error;
  });
}

function sendTimed(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
  keepChunks: boolean,
): Promise<Timed> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method, headers: init.headers, agent }, (res) => {
      const headersMs = performance.now() - start;
      const chunks: Timed["chunks"] = [];
      res.on("data", (bytes: Buffer) => {
        if (keepChunks) chunks.push({ at: performance.now() - start, bytes });
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headersMs, totalMs: performance.now() - start, chunks }),
      );
      res.on("error", reject);
    });
    req.on("error", (error) => reject(Object.assign(error, { reusedSocket: req.reusedSocket })));
    req.end(init.body);
  });
}

/**
 * An open-loop sender: requests go out on a fixed schedule whether or not earlier ones have
 * answered, and each latency counts from the request's *scheduled* time, so a stall shows up in
 * the figures instead of quietly slowing the sender (no coordinated omission).
 */
export async function fixedRate(
  url: string,
  init: { method: string; headers: Record<string, string>; body?: string },
  ratePerSecond: number,
  durationMs: number,
): Promise<{ latencies: number[]; errors: number; failures: Record<string, number> }> {
  const total = Math.max(1, Math.floor((ratePerSecond * durationMs) / 1000));
  const interval = 1000 / ratePerSecond;
  const latencies: number[] = [];
  let errors = 0;
  /** What the failures were: `status 502`, `ECONNRESET`…, and how many of each. */
  const failures: Record<string, number> = {};
  const fail = (what: string) => {
    errors++;
    failures[what] = (failures[what] ?? 0) + 1;
  };
  const pending: Promise<void>[] = [];
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    while (sent < total && start + sent * interval <= now) {
      const scheduled = start + sent * interval;
      pending.push(
        timedRequest(url, init).then(
          (r) => {
            if (r.status === 200) latencies.push(performance.now() - scheduled);
            else fail(`status ${r.status}`);
          },
          (error: NodeJS.ErrnoException) => fail(error.code ?? String(error)),
        ),
      );
      sent++;
    }
    // Yield to the event loop so answers are read, then look at the clock again.
    await new Promise((next) => setImmediate(next));
  }
  await Promise.all(pending);
  return { latencies, errors, failures };
}

/** The p-th percentile (0–100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export const median = (values: readonly number[]): number => percentile(values, 50);
