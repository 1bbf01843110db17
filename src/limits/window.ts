/** The per-minute window: a request counts until this long after it was admitted. */
export const WINDOW_MS = 60_000;

/** The most request times one report may add to a window: a slice lends no more than this. */
const MAX_REPORTED = 1_000;

type Lent = { count: number; lentAt: number; expiresAt: number };

/**
 * An exact sliding 60-second window of admitted requests. The times are in memory: the object that
 * holds it stays in memory while it is called, and is evicted only after a minute or more of
 * silence, when they have all left the window anyway.
 *
 * Requests may also be lent out ahead of time (`lend`): an isolate that holds some may admit them
 * until its lease expires, without asking. Each one lent counts as admitted from the moment it is
 * lent until a minute after the lease expires (the latest it can be used, plus the window), until
 * the isolate says when it really used them and gives back the rest (`settle`). So the window never
 * counts fewer requests than were admitted in any minute, wherever they were admitted. What is
 * lent is also kept in SQLite: it outlives the object's silence (an isolate may use it for the
 * whole lease without a call).
 */
export class SlidingWindow {
  /** When each request of the current window was admitted, oldest first. */
  readonly #times: number[] = [];
  /** Requests lent to isolates and not yet accounted for, by lease. */
  readonly #lent = new Map<string, Lent>();
  readonly #sql: SqlStorage | null;
  #lentCount = 0;

  constructor(sql: SqlStorage | null = null) {
    this.#sql = sql;
    if (sql === null) return;
    sql.exec(
      "CREATE TABLE IF NOT EXISTS lent (lease TEXT PRIMARY KEY, count INTEGER NOT NULL, lent_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
    );
    for (const row of sql.exec<{ lease: string; count: number; lent_at: number; expires_at: number }>(
      "SELECT lease, count, lent_at, expires_at FROM lent",
    )) {
      this.#lent.set(row.lease, { count: row.count, lentAt: row.lent_at, expiresAt: row.expires_at });
      this.#lentCount += row.count;
    }
  }

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

  /** Lends `count` requests to `lease` at `now` until `expiresAt` (ms since the epoch); a lease holds one loan at a time. */
  lend(lease: string, count: number, now: number, expiresAt: number): void {
    this.#forget(lease);
    if (count <= 0) return;
    this.#lent.set(lease, { count, lentAt: now, expiresAt });
    this.#lentCount += count;
    this.#sql?.exec(
      "INSERT INTO lent (lease, count, lent_at, expires_at) VALUES (?, ?, ?, ?)",
      lease,
      count,
      now,
      expiresAt,
    );
  }

  /**
   * What `lease` did with the requests it was lent: `used` are the times (ms since the epoch, on
   * this object's clock) it admitted some, counted from then on; the rest come back. Each time is
   * kept between the loan and `now` (an isolate's clock may differ), at most as many as were lent.
   * A report for a loan this object does not know (it was restarted, or the report was sent
   * twice) is counted all the same, up to `MAX_REPORTED`: counting a request twice errs on the
   * safe side; not counting it would not. Times that already left the window are dropped.
   */
  settle(lease: string, used: readonly number[], now: number): void {
    const lent = this.#lent.get(lease);
    this.#forget(lease);
    for (const reported of used.slice(0, lent?.count ?? MAX_REPORTED)) {
      let at = Number.isFinite(reported) ? Math.min(reported, now) : now;
      if (lent !== undefined) at = Math.max(at, lent.lentAt);
      if (at > now - WINDOW_MS) this.#insert(at);
    }
  }

  /** Requests lent to `lease` and not yet accounted for. */
  lentTo(lease: string): number {
    return this.#lent.get(lease)?.count ?? 0;
  }

  #forget(lease: string): void {
    const lent = this.#lent.get(lease);
    if (lent === undefined) return;
    this.#lentCount -= lent.count;
    this.#lent.delete(lease);
    this.#sql?.exec("DELETE FROM lent WHERE lease = ?", lease);
  }

  /** Inserts a time in order (a report may carry times older than the newest). */
  #insert(at: number): void {
    let i = this.#times.length;
    while (i > 0 && (this.#times[i - 1] ?? 0) > at) i--;
    this.#times.splice(i, 0, at);
  }
}
