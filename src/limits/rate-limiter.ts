import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { nextUtcDay, retryAfterSeconds } from "../lib/time";
import { type Amount, add, type Budgets, DailyBudget } from "./budget";
import { StoredWindow } from "./events";
import { StreamSlots } from "./slots";
import { SlidingWindow, WINDOW_MS } from "./window";

/** One client's limits: requests per sliding minute, concurrent streams, and optionally daily tokens and dollars. */
export type Limits = { rpm: number; maxStreams: number; tokensPerDay?: number | null; usdPerDay?: number | null };

/** Where a client's daily budgets stand: each one's limit and what is left of it, and when they renew. */
export type BudgetState = {
  tokens: { limit: number; remaining: number } | null;
  usd: { limit: number; remaining: number } | null;
  /** Milliseconds until 00:00 UTC, when the budgets renew. */
  resetMs: number;
};

/**
 * `acquire`'s answer. `limit`, `remaining` and `resetMs` describe the per-minute window (the
 * `x-ratelimit-*-requests` headers); `resetMs` is the time until the window is empty again, as
 * OpenAI's `x-ratelimit-reset-requests` means. `budget` says where the daily budgets stand.
 */
export type Admission =
  | {
      ok: true;
      limit: number;
      remaining: number;
      resetMs: number;
      /** The stream slot to release, or null. */
      slot: string | null;
      /** The budget reservation to settle, or null when no daily budget applies. */
      reservation: string | null;
      budget: BudgetState;
    }
  | {
      ok: false;
      reason: "requests" | "streams" | "tokens" | "usd";
      limit: number;
      remaining: number;
      resetMs: number;
      retryAfterSeconds: number;
      budget: BudgetState;
    };

/**
 * What an isolate tells a client's object when it renews or returns its slice of the client's
 * limits (see `ClientSlice`): what the slice did since it last reported, and what it needs now.
 */
export type SliceRenewal = {
  /** The slice's lease, chosen by the isolate (a new one starts a slice). */
  lease: string;
  /** When each request the slice admitted on its own since it last reported was admitted (ms since the epoch, the isolate's clock). */
  used: number[];
  /** When the isolate sent this (its clock): the object moves `used` by the difference, later rather than earlier. */
  sentAt: number;
  /** What the slice's settled requests spent since it last reported. */
  spent: Amount;
  /**
   * The request asking to be admitted, or null to return the slice. `reserve` is its own
   * reservation; `inFlight` what the slice's requests still running reserved; `permits` how many
   * more requests the slice would like to admit on its own; `room` how much more of the budgets.
   */
  asking: { reserve: Amount; inFlight: Amount; permits: number; room: Amount } | null;
};

/**
 * `renew`'s answer: the asking request's admission (as `acquire` answers it, without a slot), and
 * what the slice holds from now on: requests it may admit on its own and what it holds of the
 * budgets (its requests in flight included), until `expiresAt`.
 */
export type SliceAnswer = (
  | { ok: true; limit: number; remaining: number; resetMs: number; budget: BudgetState }
  | (Omit<Extract<Admission, { ok: false }>, "reason"> & { ok: false; reason: "requests" | "tokens" | "usd" })
) & { lease: string; expiresAt: number; permits: number; granted: Amount };

/**
 * `retry-after` for a request refused because every stream slot is taken. Nobody knows when a
 * stream ends; most end within seconds, and the SDKs back off further on their own.
 */
export const STREAM_RETRY_AFTER_SECONDS = 5;

const NO_AMOUNT: Amount = { tokens: 0, usd: 0 };

/**
 * Counts one client's requests, live streams and daily tokens and dollars, exactly: one object per
 * client identity (see `limiterFor`), and every method runs start to finish without awaiting, so
 * calls that arrive together are applied one at a time and cannot overshoot a limit.
 *
 * @example
 * const admission = await limiterFor(env.RATE_LIMITER, "key:web").acquire({ rpm: 60, maxStreams: 5 }, true);
 */
export class RateLimiter extends DurableObject<Env> {
  readonly #window: SlidingWindow;
  readonly #slots: StreamSlots;
  readonly #budget: DailyBudget;
  readonly #hourly: StoredWindow;
  /** The latest time seen: a clock that steps back must not reorder the window. */
  #now = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#window = new SlidingWindow(ctx.storage.sql);
    this.#slots = new StreamSlots(ctx.storage.sql);
    this.#budget = new DailyBudget(ctx.storage.sql);
    this.#hourly = new StoredWindow(ctx.storage.sql, 3_600_000);
  }

  /**
   * Counts one event against `perHour` in a sliding hour, exactly, kept in SQLite (an object is
   * evicted long before an hour of silence ends): session mints per client IP.
   */
  admitHourly(perHour: number): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const admitted = this.#hourly.admit(this.#tick(), perHour);
    return admitted.ok ? admitted : { ok: false, retryAfterSeconds: retryAfterSeconds(admitted.waitMs) };
  }

  /**
   * Counts one request against `limits.rpm` (a sliding 60-second window, exact); when `stream`,
   * also takes one of `limits.maxStreams` concurrent-stream slots; when a daily budget applies,
   * reserves `reserve` of it, refusing a request whose reservation does not fit in what is left.
   * Refused requests are not counted and take nothing. Throws a `RangeError` for limits that are not
   * whole numbers (`rpm` at least 1, `maxStreams` at least 0).
   */
  acquire(limits: Limits, stream: boolean, reserve: Amount = NO_AMOUNT): Admission {
    checkLimits(limits);
    const { rpm, maxStreams } = limits;
    const budgets = budgetsOf(limits);
    const now = this.#tick();
    const window = this.#window;
    const state = { limit: rpm, remaining: Math.max(0, rpm - window.size), resetMs: window.resetMs(now) };

    if (window.size >= rpm) {
      const retry = retryAfterSeconds(window.waitMs(now, rpm));
      return { ok: false, reason: "requests", ...state, retryAfterSeconds: retry, budget: this.#state(now, budgets) };
    }
    if (stream && this.#slots.size >= maxStreams) {
      const retry = STREAM_RETRY_AFTER_SECONDS;
      return { ok: false, reason: "streams", ...state, retryAfterSeconds: retry, budget: this.#state(now, budgets) };
    }
    const over = this.#budget.overflow(now, budgets, reserve);
    if (over !== null) {
      const retry = retryAfterSeconds(nextUtcDay(now) - now);
      return { ok: false, reason: over, ...state, retryAfterSeconds: retry, budget: this.#state(now, budgets) };
    }

    window.add(now);
    const budgeted = budgets.tokensPerDay !== null || budgets.usdPerDay !== null;
    const reservation = budgeted ? this.#budget.reserve(now, reserve) : null;
    const slot = stream ? this.#slots.take(now) : null;
    const remaining = rpm - window.size;
    return {
      ok: true,
      limit: rpm,
      remaining,
      resetMs: WINDOW_MS,
      slot,
      reservation,
      budget: this.#state(now, budgets),
    };
  }

  /**
   * Renews an isolate's slice of this client's limits, admitting the request that asks (counted at
   * once), or returns it (`asking` null). First books what the slice did: the times its requests
   * were admitted (the requests lent and not used come back) and what its settled requests spent.
   * Then admits the asking request as `acquire` would, and lends the slice up to `permits` more
   * requests (never beyond the limit) and its budgets' `inFlight`, `reserve` and up to `room` more,
   * for `ttlMs`. Refused, the slice holds no requests and keeps of the budgets only what its
   * requests in flight reserved. Throws a `RangeError` for invalid limits, as `acquire`.
   */
  renew(renewal: SliceRenewal, limits: Limits, ttlMs: number): SliceAnswer {
    checkLimits(limits);
    const { rpm } = limits;
    const budgets = budgetsOf(limits);
    const now = this.#tick();
    const window = this.#window;
    const { lease } = renewal;
    // The isolate's times, on this object's clock: moved by how long ago it says it sent them (the
    // difference of the clocks plus the call's own time, so later rather than earlier).
    const offset = Number.isFinite(renewal.sentAt) ? now - renewal.sentAt : 0;
    window.settle(
      lease,
      renewal.used.map((at) => at + offset),
      now,
    );
    const asking = renewal.asking === null ? null : sane(renewal.asking);
    const admits = asking !== null && window.size < rpm;
    let granted = NO_AMOUNT;
    let over: "tokens" | "usd" | null = null;
    if (budgets.tokensPerDay !== null || budgets.usdPerDay !== null) {
      const need = admits ? add(asking.inFlight, asking.reserve) : NO_AMOUNT;
      const want = asking === null ? NO_AMOUNT : admits ? add(need, asking.room) : asking.inFlight;
      const keep = asking?.inFlight ?? NO_AMOUNT;
      const slice = this.#budget.renewSlice(lease, { spent: renewal.spent, want, need, keep }, budgets, now);
      granted = slice.granted;
      if (!slice.ok) over = slice.over;
    }
    const expiresAt = now + ttlMs;
    const state = { limit: rpm, remaining: Math.max(0, rpm - window.size), resetMs: window.resetMs(now) };
    const held = { lease, expiresAt, permits: 0, granted };
    if (asking === null) return { ok: true, ...state, budget: this.#state(now, budgets), ...held };
    if (!admits) {
      const retry = retryAfterSeconds(window.waitMs(now, rpm));
      return {
        ok: false,
        reason: "requests",
        ...state,
        retryAfterSeconds: retry,
        budget: this.#state(now, budgets),
        ...held,
      };
    }
    if (over !== null) {
      const retry = retryAfterSeconds(nextUtcDay(now) - now);
      return {
        ok: false,
        reason: over,
        ...state,
        retryAfterSeconds: retry,
        budget: this.#state(now, budgets),
        ...held,
      };
    }
    window.add(now);
    const permits = Math.max(0, Math.min(asking.permits, rpm - window.size));
    window.lend(lease, permits, now, expiresAt);
    const remaining = rpm - window.size;
    return { ok: true, limit: rpm, remaining, resetMs: WINDOW_MS, budget: this.#state(now, budgets), ...held, permits };
  }

  /**
   * Ends an admitted request in one call: frees its stream slot and settles its reservation at what
   * it really spent. Either may be null; both are idempotent.
   */
  finish(slot: string | null, reservation: string | null, spent: Amount): void {
    if (slot !== null) this.#slots.release(slot);
    if (reservation !== null) this.#budget.settle(reservation, spent);
  }

  /**
   * Adds `more` to an open reservation (a long session that spends as it goes) if it fits in what
   * is left of the budgets; false when it does not, or the reservation is no longer open.
   */
  extend(reservation: string, more: Amount, limits: Limits): boolean {
    const now = this.#tick();
    if (this.#budget.overflow(now, budgetsOf(limits), more) !== null) return false;
    return this.#budget.grow(reservation, more, now);
  }

  /**
   * Where the client stands, without counting anything: its requests in the current minute and
   * what is left of its daily budgets. What `GET /me` answers.
   */
  peek(limits: Limits): { requests: { limit: number; remaining: number; resetMs: number }; budget: BudgetState } {
    const now = this.#tick();
    const window = this.#window;
    return {
      requests: { limit: limits.rpm, remaining: Math.max(0, limits.rpm - window.size), resetMs: window.resetMs(now) },
      budget: this.#state(now, budgetsOf(limits)),
    };
  }

  /** What `day` (UTC, YYYY-MM-DD) has spent and holds reserved, in tokens and in dollars. */
  usedOn(day: string): { spent: number; reserved: number; spentUsd: number; reservedUsd: number } {
    return this.#budget.usedOn(day);
  }

  #state(now: number, budgets: Budgets): BudgetState {
    const left = this.#budget.left(now, budgets);
    return {
      tokens: budgets.tokensPerDay === null ? null : { limit: budgets.tokensPerDay, remaining: left.tokens ?? 0 },
      usd: budgets.usdPerDay === null ? null : { limit: budgets.usdPerDay, remaining: left.usd ?? 0 },
      resetMs: nextUtcDay(now) - now,
    };
  }

  /** The current time, never earlier than the last; lets go of what expired. */
  #tick(): number {
    const now = Math.max(Date.now(), this.#now);
    this.#now = now;
    this.#window.tick(now);
    this.#slots.tick(now);
    this.#budget.tick(now);
    return now;
  }
}

/**
 * An asking request's figures as the object can use them: an amount that is not a finite
 * non-negative number (a bug, or a request that asks for more than exists) is taken as needing
 * everything (refused), room and wishes as nothing.
 */
function sane(asking: NonNullable<SliceRenewal["asking"]>): NonNullable<SliceRenewal["asking"]> {
  const need = (n: number) => (Number.isFinite(n) && n >= 0 ? n : Number.POSITIVE_INFINITY);
  const wish = (n: number) => (Number.isFinite(n) && n >= 0 ? n : 0);
  return {
    reserve: { tokens: need(asking.reserve.tokens), usd: need(asking.reserve.usd) },
    inFlight: { tokens: need(asking.inFlight.tokens), usd: need(asking.inFlight.usd) },
    permits: Number.isSafeInteger(asking.permits) && asking.permits > 0 ? asking.permits : 0,
    room: { tokens: wish(asking.room.tokens), usd: wish(asking.room.usd) },
  };
}

function checkLimits({ rpm, maxStreams }: Limits): void {
  if (!Number.isSafeInteger(rpm) || rpm < 1 || !Number.isSafeInteger(maxStreams) || maxStreams < 0) {
    throw new RangeError(`invalid limits: rpm=${rpm}, maxStreams=${maxStreams}`);
  }
}

function budgetsOf(limits: Limits): Budgets {
  return { tokensPerDay: limits.tokensPerDay ?? null, usdPerDay: limits.usdPerDay ?? null };
}
