/**
 * An exact sliding window of events kept in the object's SQLite, for windows longer than an
 * object stays in memory (an hour of session mints): what was counted survives eviction.
 */
export class StoredWindow {
  readonly #sql: SqlStorage;
  readonly #windowMs: number;

  constructor(sql: SqlStorage, windowMs: number) {
    this.#sql = sql;
    this.#windowMs = windowMs;
    sql.exec("CREATE TABLE IF NOT EXISTS events (at INTEGER NOT NULL)");
  }

  /**
   * Counts one event at `now` if fewer than `limit` are in the window; else says how long until one
   * more fits, in milliseconds.
   */
  admit(now: number, limit: number): { ok: true } | { ok: false; waitMs: number } {
    this.#sql.exec("DELETE FROM events WHERE at <= ?", now - this.#windowMs);
    const times = this.#sql.exec<{ at: number }>("SELECT at FROM events ORDER BY at").toArray();
    if (times.length >= limit) {
      const frees = (times[times.length - limit]?.at ?? now) + this.#windowMs;
      return { ok: false, waitMs: frees - now };
    }
    this.#sql.exec("INSERT INTO events (at) VALUES (?)", now);
    return { ok: true };
  }
}
