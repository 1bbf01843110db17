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
    // Reservations charged in full when they expired, for two days: a late report must not book them again.
    sql.exec("CREATE TABLE IF NOT EXISTS charged (id TEXT PRIMARY KEY, day TEXT NOT NULL)");
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
      this.#sql.exec("INSERT OR IGNORE INTO charged (id, day) VALUES (?, ?)", row.id, row.day);
      this.#spend(row.day, row);
    }
    this.#sql.exec("DELETE FROM spent WHERE day < ?", utcDay(now - 2 * DAY_MS));
    this.#sql.exec("DELETE FROM charged WHERE day < ?", utcDay(now - 2 * DAY_MS));
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

  /**
   * Renews an isolate's slice of the budgets (`lease`, one reservation that several requests
   * share): books `spent`, what its settled requests spent, on the slice's day, then sets the slice
   * to `want`, or as much of it as the budgets leave. When that cannot cover `need` (the asking
   * request and those in flight), `over` names the budget that refused and the slice keeps only
   * `keep` (what its requests in flight reserved), never more than it held less what it reported.
   * A slice from an earlier day starts afresh on `now`'s day. `want` of nothing returns the slice.
   * A budget that does not apply (null) lends nothing.
   */
  renewSlice(
    lease: string,
    report: { spent: Amount; want: Amount; need: Amount; keep: Amount },
    budgets: Budgets,
    now: number,
  ): { ok: true; granted: Amount } | { ok: false; over: "tokens" | "usd"; granted: Amount } {
    const day = utcDay(now);
    const held = this.#sql
      .exec<{ day: string; tokens: number; usd: number }>(
        "SELECT day, tokens, usd FROM reservations WHERE id = ?",
        lease,
      )
      .toArray()[0];
    const spent = { tokens: Math.round(positive(report.spent.tokens)), usd: positive(report.spent.usd) };
    // Booked on the slice's day; a slice that held nothing is today's (it lent nothing it could
    // spend). A slice already charged in full (it went an hour without a word) books nothing more.
    if (held !== undefined || !this.#charged(lease)) this.#spend(held?.day ?? day, spent);
    if (held !== undefined) this.#sql.exec("DELETE FROM reservations WHERE id = ?", lease);
    const sameDay = held !== undefined && held.day === day;
    const keep = {
      tokens: sameDay ? Math.min(Math.max(0, held.tokens - spent.tokens), Math.ceil(report.keep.tokens)) : 0,
      usd: sameDay ? Math.min(Math.max(0, held.usd - spent.usd), report.keep.usd) : 0,
    };
    const left = this.left(now, budgets);
    const offered = {
      tokens: left.tokens === null ? 0 : Math.max(keep.tokens, Math.min(Math.ceil(report.want.tokens), left.tokens)),
      usd: left.usd === null ? 0 : Math.max(keep.usd, Math.min(report.want.usd, left.usd)),
    };
    const over =
      left.tokens !== null && Math.ceil(report.need.tokens) > offered.tokens
        ? "tokens"
        : left.usd !== null && report.need.usd > offered.usd + USD_EPSILON
          ? "usd"
          : null;
    const returning = report.want.tokens <= 0 && report.want.usd <= 0;
    const granted = returning ? { tokens: 0, usd: 0 } : over === null ? offered : keep;
    if (granted.tokens > 0 || granted.usd > 0) {
      this.#sql.exec(
        "INSERT INTO reservations (id, day, tokens, usd, taken_at) VALUES (?, ?, ?, ?, ?)",
        lease,
        day,
        granted.tokens,
        granted.usd,
        now,
      );
    }
    return over === null ? { ok: true, granted } : { ok: false, over, granted };
  }

  #charged(id: string): boolean {
    return this.#sql.exec("SELECT 1 FROM charged WHERE id = ?", id).toArray().length > 0;
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

/** `n` when it is a finite positive number, else 0: what a report says was spent, whatever it carries. */
export function positive(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** The sum of two amounts, tokens and dollars apart. */
export function add(a: Amount, b: Amount): Amount {
  return { tokens: a.tokens + b.tokens, usd: a.usd + b.usd };
}

/** Dollar sums are floating point: a reservation this close to what is left still fits. */
const USD_EPSILON = 1e-9;
