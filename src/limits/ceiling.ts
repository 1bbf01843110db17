import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { DAY_MS, utcDay } from "../lib/time";

/**
 * A slice an isolate does not renew or return within this long after it expires is taken for spent
 * in full: the isolate died holding it, and what it spent cannot be known.
 */
export const ABANDONED_AFTER_MS = 60_000;

/** `renew`'s answer: the slice the isolate now holds, in US dollars, and until when. */
export type Grant = { lease: string; day: string; grantedUsd: number; expiresAt: number };

/** What an isolate tells the ceiling when it renews or returns its slice. */
export type Renewal = {
  /** The isolate's slice, or null for a first one. */
  lease: string | null;
  /** The day (UTC, YYYY-MM-DD) the slice is for. */
  day: string;
  /** What the isolate's settled requests spent since it last reported, in US dollars. */
  spentUsd: number;
  /** The slice it wants to hold from now on: its requests in flight, plus room for more (0 returns it). */
  wantUsd: number;
  /** The least of `wantUsd` it can do with (its requests in flight plus the one asking); less is a refusal. */
  needUsd: number;
};

/** `renew`'s answer: the slice held (which never shrinks below what the isolate may already be using), and whether it covers `needUsd`. */
export type Renewed = Grant & { ok: boolean };

/**
 * What the whole proxy may spend per UTC day (`DAILY_SPEND_LIMIT_USD`), held by one object and
 * lent to isolates in slices, so that no request waits on it: an isolate spends its slice locally,
 * renews it before it runs out, and returns what it did not spend when the slice expires. The
 * object keeps, per day, what has been reported spent and what is lent out, and never lends more
 * than the ceiling less both: the sum of all slices and all spending never exceeds the ceiling.
 *
 * @example
 * const slice = await ceilingFor(env.SPEND_CEILING).renew({ lease: null, day, spentUsd: 0, wantUsd: 0.5, needUsd: 0.01 }, 10, 20_000);
 */
export class SpendCeiling extends DurableObject<Env> {
  readonly #sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    this.#sql.exec("CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY, spent REAL NOT NULL)");
    this.#sql.exec(
      "CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, day TEXT NOT NULL, granted REAL NOT NULL, expires_at INTEGER NOT NULL)",
    );
  }

  /**
   * Records what an isolate spent (`spentUsd` moves out of its slice into the day's spending),
   * then sets its slice to `wantUsd`, or to as much of it as the ceiling `limitUsd` leaves, but
   * never below what it held less what it just reported: an isolate may be spending what it was
   * granted while this call is on its way. `wantUsd` 0 returns the slice. `ok` is false when the
   * slice could not cover `needUsd` (the ceiling is reached): the slice then stays as it was, less
   * what was reported, and the isolate refuses the request.
   */
  renew(renewal: Renewal, limitUsd: number, ttlMs: number): Renewed {
    const now = Date.now();
    this.#expire(now);
    const { day } = renewal;
    const spent = Math.max(0, renewal.spentUsd);
    const held = renewal.lease === null ? null : this.#lease(renewal.lease);
    this.#spend(held?.day ?? day, spent);
    const lease = held !== null && held.day === day ? held.id : crypto.randomUUID();
    if (held !== null && held.day !== day) this.#sql.exec("DELETE FROM leases WHERE id = ?", held.id);
    const floor = held !== null && held.day === day ? Math.max(0, held.granted - spent) : 0;
    const free = Math.max(0, limitUsd - this.#lent(day, lease) - this.#spent(day));
    // A return (wantUsd 0) comes from an isolate that spends nothing of its slice meanwhile. A
    // renewal the ceiling cannot cover takes nothing more than the isolate already holds: a refused
    // request must not leave its isolate holding what other isolates need.
    const offered = Math.min(renewal.wantUsd, free);
    const ok = Math.max(floor, offered) + EPSILON >= renewal.needUsd;
    const granted = renewal.wantUsd <= 0 ? 0 : ok ? Math.max(floor, offered) : floor;
    if (granted <= EPSILON) {
      this.#sql.exec("DELETE FROM leases WHERE id = ?", lease);
      return { lease, day, grantedUsd: 0, expiresAt: now, ok };
    }
    this.#hold(lease, day, granted, now + ttlMs);
    return { lease, day, grantedUsd: granted, expiresAt: now + ttlMs, ok };
  }

  /** The day's state: what was spent and what is lent out in slices, in US dollars. */
  stateOf(day: string): { spentUsd: number; lentUsd: number; leases: number } {
    this.#expire(Date.now());
    const lent = this.#sql
      .exec<{ lent: number | null; leases: number }>(
        "SELECT SUM(granted) AS lent, COUNT(*) AS leases FROM leases WHERE day = ?",
        day,
      )
      .toArray()[0];
    return { spentUsd: this.#spent(day), lentUsd: lent?.lent ?? 0, leases: lent?.leases ?? 0 };
  }

  #lease(id: string): { id: string; day: string; granted: number } | null {
    return (
      this.#sql
        .exec<{ id: string; day: string; granted: number }>("SELECT id, day, granted FROM leases WHERE id = ?", id)
        .toArray()[0] ?? null
    );
  }

  #hold(id: string, day: string, granted: number, expiresAt: number): void {
    this.#sql.exec(
      "INSERT INTO leases (id, day, granted, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET granted = excluded.granted, expires_at = excluded.expires_at, day = excluded.day",
      id,
      day,
      granted,
      expiresAt,
    );
  }

  #lent(day: string, except: string): number {
    return (
      this.#sql
        .exec<{ lent: number | null }>("SELECT SUM(granted) AS lent FROM leases WHERE day = ? AND id != ?", day, except)
        .toArray()[0]?.lent ?? 0
    );
  }

  #spent(day: string): number {
    return this.#sql.exec<{ spent: number }>("SELECT spent FROM days WHERE day = ?", day).toArray()[0]?.spent ?? 0;
  }

  #spend(day: string, usd: number): void {
    if (usd <= 0) return;
    this.#sql.exec(
      "INSERT INTO days (day, spent) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET spent = spent + excluded.spent",
      day,
      usd,
    );
  }

  /** Slices abandoned by isolates that died count as spent in full; days before yesterday are forgotten. */
  #expire(now: number): void {
    const abandoned = this.#sql
      .exec<{ id: string; day: string; granted: number }>(
        "SELECT id, day, granted FROM leases WHERE expires_at <= ?",
        now - ABANDONED_AFTER_MS,
      )
      .toArray();
    for (const row of abandoned) {
      this.#sql.exec("DELETE FROM leases WHERE id = ?", row.id);
      this.#spend(row.day, row.granted);
    }
    const old = utcDay(now - 2 * DAY_MS);
    this.#sql.exec("DELETE FROM days WHERE day < ?", old);
    this.#sql.exec("DELETE FROM leases WHERE day < ?", old);
  }
}

/** Dollar sums are floating point: amounts this close are equal. */
export const EPSILON = 1e-9;

/** The one ceiling object of a deployment. */
export function ceilingFor(namespace: DurableObjectNamespace<SpendCeiling>): DurableObjectStub<SpendCeiling> {
  return namespace.getByName("daily-spend-ceiling");
}
