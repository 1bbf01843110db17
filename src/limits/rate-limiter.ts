import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** One client's limits: requests per sliding minute, concurrent streams, and optionally tokens per UTC day. */
export type Limits = { rpm: number; maxStreams: number; tokensPerDay?: number | null };

/**
 * `acquire`'s answer. `limit`, `remaining` and `resetMs` describe the per-minute window (the
 * `x-ratelimit-*-requests` headers); `resetMs` is the time until the window is empty again, as
 * OpenAI's `x-ratelimit-reset-requests` means. `slot` is the stream slot to `release`, or null.
 */
export type Admission =
  | {
      ok: true;
      limit: number;
      remaining: number;
      resetMs: number;
      slot: string | null;
      /** The token reservation to `settle`, or null when no daily budget applies. */
      reservation: string | null;
    }
  | {
      ok: false;
      reason: "requests" | "streams" | "budget";
      limit: number;
      remaining: number;
      resetMs: number;
      retryAfterSeconds: number;
    };

/** The per-minute window: a request counts until this long after it was admitted. */
export const WINDOW_MS = 60_000;

/**
 * A stream slot that is never released (its Worker crashed or was evicted mid-stream) is freed this
 * long after it was taken, so a client cannot be locked out for good. Longer than any stream the
 * proxy lets run (upstream and idle timeouts end stalled ones much sooner), so a live stream is
 * never freed early.
 */
export const MAX_STREAM_MS = 15 * 60_000;

/**
 * `retry-after` for a request refused because every stream slot is taken. Nobody knows when a
 * stream ends; most end within seconds, and the SDKs back off further on their own.
 */
export const STREAM_RETRY_AFTER_SECONDS = 5;

/**
 * Counts one client's requests and live streams, exactly: one object per client identity (see
 * `limiterFor`), and every method runs start to finish without awaiting, so calls that arrive
 * together are applied one at a time and cannot overshoot a limit.
 *
 * The request window lives in memory only: an object stays in memory while it is being called,
 * and is evicted only after a minute or more of silence, when its window is empty anyway. Stream
 * slots are also written to SQLite, because a stream can outlive that: a client with one long
 * stream and nothing else would otherwise find its slot forgotten.
 *
 * @example
 * const admission = await limiterFor(env.RATE_LIMITER, "key:web").acquire({ rpm: 60, maxStreams: 5 }, true);
 */
export class RateLimiter extends DurableObject<Env> {
  /** When each request of the current window was admitted, oldest first. */
  readonly #window: number[] = [];
  /** Live stream slots → when each was taken; the `slots` table holds the same rows. */
  readonly #slots = new Map<string, number>();
  /** The latest time seen: a clock that steps back must not reorder the window. */
  #now = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS slots (id TEXT PRIMARY KEY, taken_at INTEGER NOT NULL)");
    // Budgets must survive eviction: a day's spend and its open reservations live in SQLite only.
    sql.exec("CREATE TABLE IF NOT EXISTS spent (day TEXT PRIMARY KEY, tokens INTEGER NOT NULL)");
    sql.exec(
      "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, day TEXT NOT NULL, tokens INTEGER NOT NULL, taken_at INTEGER NOT NULL)",
    );
    for (const row of sql.exec<{ id: string; taken_at: number }>("SELECT id, taken_at FROM slots")) {
      this.#slots.set(row.id, row.taken_at);
    }
  }

  /**
   * Counts one request against `limits.rpm` (a sliding 60-second window, exact); when `stream`,
   * also takes one of `limits.maxStreams` concurrent-stream slots. Refused requests are not
   * counted, and take no slot. Throws a `RangeError` for limits that are not whole numbers
   * (`rpm` at least 1, `maxStreams` at least 0).
   */
  acquire(limits: Limits, stream: boolean, reserveTokens = 0): Admission {
    const { rpm, maxStreams } = limits;
    const budget = limits.tokensPerDay ?? null;
    if (!Number.isSafeInteger(rpm) || rpm < 1 || !Number.isSafeInteger(maxStreams) || maxStreams < 0) {
      throw new RangeError(`invalid limits: rpm=${rpm}, maxStreams=${maxStreams}`);
    }
    const now = this.#tick();
    const window = this.#window;
    const newest = window.at(-1);
    const resetMs = newest === undefined ? 0 : newest + WINDOW_MS - now;

    if (window.length >= rpm) {
      // One more fits once all but rpm - 1 of the window have left it (more than one if rpm was lowered).
      const frees = (window[window.length - rpm] ?? now) + WINDOW_MS;
      return {
        ok: false,
        reason: "requests",
        limit: rpm,
        remaining: 0,
        resetMs,
        retryAfterSeconds: seconds(frees - now),
      };
    }
    if (stream && this.#slots.size >= maxStreams) {
      const remaining = rpm - window.length;
      return {
        ok: false,
        reason: "streams",
        limit: rpm,
        remaining,
        resetMs,
        retryAfterSeconds: STREAM_RETRY_AFTER_SECONDS,
      };
    }

    const sql = this.ctx.storage.sql;
    const day = utcDay(now);
    if (budget !== null) {
      // Admitted while anything is left: concurrent requests overspend by one reservation at most.
      const used = this.#used(day);
      if (used >= budget) {
        return {
          ok: false,
          reason: "budget",
          limit: rpm,
          remaining: rpm - window.length,
          resetMs,
          retryAfterSeconds: seconds(nextUtcDay(now) - now),
        };
      }
    }

    window.push(now);
    let reservation: string | null = null;
    if (budget !== null) {
      reservation = crypto.randomUUID();
      sql.exec(
        "INSERT INTO reservations (id, day, tokens, taken_at) VALUES (?, ?, ?, ?)",
        reservation,
        day,
        Math.max(0, Math.ceil(reserveTokens)),
        now,
      );
    }
    let slot: string | null = null;
    if (stream) {
      slot = crypto.randomUUID();
      this.#slots.set(slot, now);
      this.ctx.storage.sql.exec("INSERT INTO slots (id, taken_at) VALUES (?, ?)", slot, now);
    }
    return { ok: true, limit: rpm, remaining: rpm - window.length, resetMs: WINDOW_MS, slot, reservation };
  }

  /**
   * Settles a reservation with the tokens the request really used (prompt plus completion; when
   * unknown, pass null and the reservation is charged in full). Idempotent; unknown ids are ignored.
   */
  settle(reservation: string, tokens: number | null): void {
    const sql = this.ctx.storage.sql;
    const row = sql
      .exec<{ day: string; tokens: number }>("SELECT day, tokens FROM reservations WHERE id = ?", reservation)
      .toArray()[0];
    if (row === undefined) return;
    sql.exec("DELETE FROM reservations WHERE id = ?", reservation);
    this.#spend(row.day, tokens === null ? row.tokens : Math.max(0, Math.round(tokens)));
  }

  /** Tokens spent and reserved on `day` (UTC, YYYY-MM-DD). */
  usedOn(day: string): { spent: number; reserved: number } {
    const sql = this.ctx.storage.sql;
    const spent = sql.exec<{ tokens: number }>("SELECT tokens FROM spent WHERE day = ?", day).toArray()[0]?.tokens ?? 0;
    const reserved =
      sql
        .exec<{ tokens: number | null }>("SELECT SUM(tokens) AS tokens FROM reservations WHERE day = ?", day)
        .toArray()[0]?.tokens ?? 0;
    return { spent, reserved };
  }

  #used(day: string): number {
    const { spent, reserved } = this.usedOn(day);
    return spent + reserved;
  }

  #spend(day: string, tokens: number): void {
    this.ctx.storage.sql.exec(
      "INSERT INTO spent (day, tokens) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET tokens = tokens + excluded.tokens",
      day,
      tokens,
    );
  }

  /** Frees a stream slot; idempotent; unknown slots are ignored. */
  release(slot: string): void {
    if (this.#slots.delete(slot)) this.ctx.storage.sql.exec("DELETE FROM slots WHERE id = ?", slot);
  }

  /** The current time, never earlier than the last; drops requests that left the window and expired slots. */
  #tick(): number {
    const now = Math.max(Date.now(), this.#now);
    this.#now = now;

    const fresh = this.#window.findIndex((at) => at > now - WINDOW_MS);
    this.#window.splice(0, fresh === -1 ? this.#window.length : fresh);

    const expiredBefore = now - MAX_STREAM_MS;
    let expired = false;
    for (const [slot, takenAt] of this.#slots) {
      if (takenAt <= expiredBefore) {
        this.#slots.delete(slot);
        expired = true;
      }
    }
    if (expired) this.ctx.storage.sql.exec("DELETE FROM slots WHERE taken_at <= ?", expiredBefore);

    // A reservation never settled (its Worker died) is charged in full, and old days are forgotten.
    const sql = this.ctx.storage.sql;
    for (const row of sql
      .exec<{ id: string; day: string; tokens: number }>(
        "SELECT id, day, tokens FROM reservations WHERE taken_at <= ?",
        expiredBefore,
      )
      .toArray()) {
      sql.exec("DELETE FROM reservations WHERE id = ?", row.id);
      this.#spend(row.day, row.tokens);
    }
    sql.exec("DELETE FROM spent WHERE day < ?", utcDay(now - 2 * 86_400_000));
    return now;
  }
}

/** The UTC day of `ms`, as YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The start of the next UTC day after `ms`. */
function nextUtcDay(ms: number): number {
  const date = new Date(ms);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 1);
}

/** Whole seconds to wait for `ms` to pass, at least 1 (`retry-after: 0` invites a busy loop). */
function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
