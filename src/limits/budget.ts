import { DAY_MS, utcDay } from "../lib/time";

/**
 * A reservation never settled (its Worker died before it could) is charged in full this long after
 * it was taken: longer than any request the proxy lets run unattended.
 */
export const RESERVATION_EXPIRY_MS = 60 * 60_000;

/** An amount of a daily budget: tokens and US dollars. */
export type Amount = { tokens: number; usd: number };

/** A client's daily budgets; null where none applies. */
export type Budgets = { tokensPerDay: number | null; usdPerDay: number | null };

/**
 * One client's daily budgets, in tokens and in US dollars, in the object's SQLite (it must survive
 * eviction): what each UTC day has spent, and the reservations of requests still running. A
 * reservation is a ceiling for admission, not a charge: it is settled at what the request really
 * spent.
 */
export class DailyBudget {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec("CREATE TABLE IF NOT EXISTS spent (day TEXT PRIMARY KEY, tokens INTEGER NOT NULL)");
    sql.exec(
      "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, day TEXT NOT NULL, tokens INTEGER NOT NULL, taken_at INTEGER NOT NULL)",
    );
    // Dollars came later: objects created before keep their rows and gain the column.
    for (const table of ["spent", "reservations"]) {
      const columns = sql.exec<{ name: string }>(`PRAGMA table_info(${table})`).toArray();
      if (!columns.some((column) => column.name === "usd")) {
        sql.exec(`ALTER TABLE ${table} ADD COLUMN usd REAL NOT NULL DEFAULT 0`);
      }
    }
  }

  /** Charges expired reservations in full and forgets days older than yesterday. */
  tick(now: number): void {
    const expired = this.#sql
      .exec<{ id: string; day: string; tokens: number; usd: number }>(
        "SELECT id, day, tokens, usd FROM reservations WHERE taken_at <= ?",
        now - RESERVATION_EXPIRY_MS,
      )
      .toArray();
    for (const row of expired) {
      this.#sql.exec("DELETE FROM reservations WHERE id = ?", row.id);
      this.#spend(row.day, row);
    }
    this.#sql.exec("DELETE FROM spent WHERE day < ?", utcDay(now - 2 * DAY_MS));
  }

  /** What `day` (UTC, YYYY-MM-DD) has spent and holds reserved. */
  usedOn(day: string): { spent: number; reserved: number; spentUsd: number; reservedUsd: number } {
    const spent = this.#sql
      .exec<{ tokens: number; usd: number }>("SELECT tokens, usd FROM spent WHERE day = ?", day)
      .toArray()[0];
    const reserved = this.#sql
      .exec<{ tokens: number | null; usd: number | null }>(
        "SELECT SUM(tokens) AS tokens, SUM(usd) AS usd FROM reservations WHERE day = ?",
        day,
      )
      .toArray()[0];
    return {
      spent: spent?.tokens ?? 0,
      reserved: reserved?.tokens ?? 0,
      spentUsd: spent?.usd ?? 0,
      reservedUsd: reserved?.usd ?? 0,
    };
  }

  /** What is left of each budget on `now`'s day, after what was spent and what is reserved; null where none applies. */
  left(now: number, budgets: Budgets): { tokens: number | null; usd: number | null } {
    // A client without budgets (most keys) costs no query.
    if (budgets.tokensPerDay === null && budgets.usdPerDay === null) return { tokens: null, usd: null };
    const used = this.usedOn(utcDay(now));
    return {
      tokens: budgets.tokensPerDay === null ? null : Math.max(0, budgets.tokensPerDay - used.spent - used.reserved),
      usd: budgets.usdPerDay === null ? null : Math.max(0, budgets.usdPerDay - used.spentUsd - used.reservedUsd),
    };
  }

  /** Which budget `amount` does not fit in, if any. */
  overflow(now: number, budgets: Budgets, amount: Amount): "tokens" | "usd" | null {
    const left = this.left(now, budgets);
    if (left.tokens !== null && Math.ceil(amount.tokens) > left.tokens) return "tokens";
    if (left.usd !== null && amount.usd > left.usd + USD_EPSILON) return "usd";
    return null;
  }

  /** Reserves `amount`; returns the reservation's id. The caller has checked that it fits. */
  reserve(now: number, amount: Amount): string {
    const id = crypto.randomUUID();
    this.#sql.exec(
      "INSERT INTO reservations (id, day, tokens, usd, taken_at) VALUES (?, ?, ?, ?, ?)",
      id,
      utcDay(now),
      Math.max(0, Math.ceil(amount.tokens)),
      Math.max(0, amount.usd),
      now,
    );
    return id;
  }

  /**
   * Adds `amount` to a reservation still open, and counts its expiry from `now` (ms since the
   * epoch); false when it is not open (settled, expired, unknown). The caller has checked that it fits.
   */
  grow(reservation: string, amount: Amount, now: number): boolean {
    // A reservation that grows is in use: its expiry counts from now (a long Realtime session).
    const cursor = this.#sql.exec(
      "UPDATE reservations SET tokens = tokens + ?, usd = usd + ?, taken_at = ? WHERE id = ?",
      Math.max(0, Math.ceil(amount.tokens)),
      Math.max(0, amount.usd),
      now,
      reservation,
    );
    return cursor.rowsWritten > 0;
  }

  /**
   * Settles a reservation at what the request really spent (nothing for one upstream never ran),
   * on the day it was reserved. Idempotent; unknown ids are ignored.
   */
  settle(reservation: string, spent: Amount): void {
    const row = this.#sql.exec<{ day: string }>("SELECT day FROM reservations WHERE id = ?", reservation).toArray()[0];
    if (row === undefined) return;
    this.#sql.exec("DELETE FROM reservations WHERE id = ?", reservation);
    this.#spend(row.day, { tokens: Math.max(0, Math.round(spent.tokens)), usd: Math.max(0, spent.usd) });
  }

  #spend(day: string, amount: Amount): void {
    if (amount.tokens === 0 && amount.usd === 0) return;
    this.#sql.exec(
      "INSERT INTO spent (day, tokens, usd) VALUES (?, ?, ?) ON CONFLICT(day) DO UPDATE SET tokens = tokens + excluded.tokens, usd = usd + excluded.usd",
      day,
      amount.tokens,
      amount.usd,
    );
  }
}

/** Dollar sums are floating point: a reservation this close to what is left still fits. */
const USD_EPSILON = 1e-9;
