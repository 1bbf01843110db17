/** The per-minute window: a request counts until this long after it was admitted. */
export const WINDOW_MS = 60_000;

/**
 * An exact sliding 60-second window of admitted requests, in memory: the object that holds it
 * stays in memory while it is called, and is evicted only after a minute or more of silence,
 * when its window is empty anyway.
 *
 * Requests may also be lent out ahead of time (`lend`): an isolate that holds some may admit them
 * until its lease expires, without asking. Each one lent counts as admitted from the moment it is
 * lent until a minute after the lease expires (the latest it can be used, plus the window), until
 * the isolate says when it really used them and gives back the rest (`settle`). So the window never
 * counts fewer requests than were admitted in any minute, wherever they were admitted.
 */
export class SlidingWindow {
  /** When each request of the current window was admitted, oldest first. */
  readonly #times: number[] = [];
  /** Requests lent to isolates and not yet accounted for: lease → how many, and until when. */
  readonly #lent = new Map<string, { count: number; expiresAt: number }>();
  #lentCount = 0;

  /** Drops the requests that left the window by `now`, lent ones with them. */
  tick(now: number): void {
    const fresh = this.#times.findIndex((at) => at > now - WINDOW_MS);
    this.#times.splice(0, fresh === -1 ? this.#times.length : fresh);
    for (const [lease, lent] of this.#lent) {
      if (lent.expiresAt + WINDOW_MS <= now) this.#forget(lease);
    }
  }

  /** Requests in the window, lent ones included. */
  get size(): number {
    return this.#times.length + this.#lentCount;
  }

  /** Milliseconds until the window is empty again (OpenAI's `x-ratelimit-reset-requests`). */
  resetMs(now: number): number {
    let last = this.#times.at(-1) ?? Number.NEGATIVE_INFINITY;
    for (const lent of this.#lent.values()) last = Math.max(last, lent.expiresAt);
    return last === Number.NEGATIVE_INFINITY ? 0 : last + WINDOW_MS - now;
  }

  /** Milliseconds until one more request fits under `limit` (more than one may have to leave if the limit was lowered). */
  waitMs(now: number, limit: number): number {
    const leaving = [
      ...this.#times.map((at) => ({ at: at + WINDOW_MS, count: 1 })),
      ...[...this.#lent.values()].map((lent) => ({ at: lent.expiresAt + WINDOW_MS, count: lent.count })),
    ].sort((a, b) => a.at - b.at);
    let size = this.size;
    for (const { at, count } of leaving) {
      size -= count;
      if (size < limit) return at - now;
    }
    return 0;
  }

  add(now: number): void {
    this.#times.push(now);
  }

  /** Lends `count` requests to `lease` until `expiresAt` (ms since the epoch), on top of any it holds. */
  lend(lease: string, count: number, expiresAt: number): void {
    if (count <= 0) return;
    const held = this.#lent.get(lease);
    this.#lent.set(lease, { count: (held?.count ?? 0) + count, expiresAt });
    this.#lentCount += count;
  }

  /**
   * What `lease` did with the requests it was lent: `used` are the times (ms since the epoch) it
   * admitted some, counted from then on; the rest come back. At most as many as it was lent are
   * counted; times that already left the window at `now` are dropped.
   */
  settle(lease: string, used: readonly number[], now: number): void {
    const lent = this.#lent.get(lease);
    if (lent === undefined) return;
    this.#forget(lease);
    for (const at of used.slice(0, lent.count)) {
      if (at > now - WINDOW_MS) this.#insert(Math.min(at, now));
    }
  }

  /** Requests lent to `lease` and not yet accounted for. */
  lentTo(lease: string): number {
    return this.#lent.get(lease)?.count ?? 0;
  }

  #forget(lease: string): void {
    this.#lentCount -= this.#lent.get(lease)?.count ?? 0;
    this.#lent.delete(lease);
  }

  /** Inserts a time in order (a report may carry times older than the newest). */
  #insert(at: number): void {
    let i = this.#times.length;
    while (i > 0 && (this.#times[i - 1] ?? 0) > at) i--;
    this.#times.splice(i, 0, at);
  }
}
