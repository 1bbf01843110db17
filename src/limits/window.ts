/** The per-minute window: a request counts until this long after it was admitted. */
export const WINDOW_MS = 60_000;

/**
 * An exact sliding 60-second window of admitted requests, in memory: the object that holds it
 * stays in memory while it is called, and is evicted only after a minute or more of silence,
 * when its window is empty anyway.
 */
export class SlidingWindow {
  /** When each request of the current window was admitted, oldest first. */
  readonly #times: number[] = [];

  /** Drops the requests that left the window by `now`. */
  tick(now: number): void {
    const fresh = this.#times.findIndex((at) => at > now - WINDOW_MS);
    this.#times.splice(0, fresh === -1 ? this.#times.length : fresh);
  }

  /** Requests in the window. */
  get size(): number {
    return this.#times.length;
  }

  /** Milliseconds until the window is empty again (OpenAI's `x-ratelimit-reset-requests`). */
  resetMs(now: number): number {
    const newest = this.#times.at(-1);
    return newest === undefined ? 0 : newest + WINDOW_MS - now;
  }

  /** Milliseconds until one more request fits under `limit` (more than one may have to leave if the limit was lowered). */
  waitMs(now: number, limit: number): number {
    const frees = (this.#times[this.#times.length - limit] ?? now) + WINDOW_MS;
    return frees - now;
  }

  add(now: number): void {
    this.#times.push(now);
  }
}
