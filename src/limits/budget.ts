import { DAY_MS, utcDay } from "../lib/time";

/**
 * A reservation never settled (its Worker died before it could) is charged in full this long after
 * it was taken: longer than any request the proxy lets run unattended.
 */
export const RESERVATION_EXPIRY_MS = 60 * 60_000;

/**
 * One client's daily token budget, in the object's SQLite (it must survive eviction): what each
 * UTC day has spent, and the reservations of requests still running. A reservation is a ceiling
 * for admission, not a charge: it is settled at what the request really spent.
 */
export class DailyBudget {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec("CREATE TABLE IF NOT EXISTS spent (day TEXT PRIMARY KEY, tokens INTEGER NOT NULL)");
    sql.exec(
      "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, day TEXT NOT NULL, tokens INTEGER NOT NULL, taken_at INTEGER NOT NULL)",
    );
  }

  /** Charges expired reservations in full and forgets days older than yesterday. */
  tick(now: number): void {
    const expired = this.#sql
      .exec<{ id: string; day: string; tokens: number }>(
        "SELECT id, day, tokens FROM reservations WHERE taken_at <= ?",
        now - RESERVATION_EXPIRY_MS,
      )
      .toArray();
    for (const row of expired) {
      this.#sql.exec("DELETE FROM reservations WHERE id = ?", row.id);
      this.#spend(row.day, row.tokens);
    }
    this.#sql.exec("DELETE FROM spent WHERE day < ?", utcDay(now - 2 * DAY_MS));
  }

  /** Tokens spent and reserved on `day` (UTC, YYYY-MM-DD). */
  usedOn(day: string): { spent: number; reserved: number } {
    const spent =
      this.#sql.exec<{ tokens: number }>("SELECT tokens FROM spent WHERE day = ?", day).toArray()[0]?.tokens ?? 0;
    const reserved =
      this.#sql
        .exec<{ tokens: number | null }>("SELECT SUM(tokens) AS tokens FROM reservations WHERE day = ?", day)
        .toArray()[0]?.tokens ?? 0;
    return { spent, reserved };
  }

  /** What is left of `budget` on `now`'s day, after what was spent and what is reserved. */
  left(now: number, budget: number): number {
    const { spent, reserved } = this.usedOn(utcDay(now));
    return Math.max(0, budget - spent - reserved);
  }

  /** Reserves `tokens`; returns the reservation's id. The caller has checked that they fit. */
  reserve(now: number, tokens: number): string {
    const id = crypto.randomUUID();
    this.#sql.exec(
      "INSERT INTO reservations (id, day, tokens, taken_at) VALUES (?, ?, ?, ?)",
      id,
      utcDay(now),
      Math.max(0, Math.ceil(tokens)),
      now,
    );
    return id;
  }

  /**
   * Adds `tokens` to a reservation still open; false when it is not (settled, expired, unknown).
   * The caller has checked that they fit.
   */
  grow(reservation: string, tokens: number): boolean {
    const cursor = this.#sql.exec(
      "UPDATE reservations SET tokens = tokens + ? WHERE id = ?",
      Math.max(0, Math.ceil(tokens)),
      reservation,
    );
    return cursor.rowsWritten > 0;
  }

  /**
   * Settles a reservation at the tokens the request really spent (0 for one upstream never ran),
   * on the day it was reserved. Idempotent; unknown ids are ignored.
   */
  settle(reservation: string, tokens: number): void {
    const row = this.#sql.exec<{ day: string }>("SELECT day FROM reservations WHERE id = ?", reservation).toArray()[0];
    if (row === undefined) return;
    this.#sql.exec("DELETE FROM reservations WHERE id = ?", reservation);
    this.#spend(row.day, Math.max(0, Math.round(tokens)));
  }

  #spend(day: string, tokens: number): void {
    if (tokens === 0) return;
    this.#sql.exec(
      "INSERT INTO spent (day, tokens) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET tokens = tokens + excluded.tokens",
      day,
      tokens,
    );
  }
}
