import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { nextUtcDay, retryAfterSeconds } from "../lib/time";
import { DailyBudget } from "./budget";
import { StreamSlots } from "./slots";
import { SlidingWindow, WINDOW_MS } from "./window";

/** One client's limits: requests per sliding minute, concurrent streams, and optionally tokens per UTC day. */
export type Limits = { rpm: number; maxStreams: number; tokensPerDay?: number | null };

/**
 * `acquire`'s answer. `limit`, `remaining` and `resetMs` describe the per-minute window (the
 * `x-ratelimit-*-requests` headers); `resetMs` is the time until the window is empty again, as
 * OpenAI's `x-ratelimit-reset-requests` means.
 */
export type Admission =
  | {
      ok: true;
      limit: number;
      remaining: number;
      resetMs: number;
      /** The stream slot to release, or null. */
      slot: string | null;
      /** The token reservation to settle, or null when no daily budget applies. */
      reservation: string | null;
    }
  | {
      ok: false;
      reason: "requests" | "streams" | "budget";
      limit: number;
      remaining: number;
      resetMs: number;
      retryAfterSeconds: number;
      /** For `budget`: the tokens left today, which the request's reservation did not fit in. */
      tokensLeft?: number;
    };

/**
 * `retry-after` for a request refused because every stream slot is taken. Nobody knows when a
 * stream ends; most end within seconds, and the SDKs back off further on their own.
 */
export const STREAM_RETRY_AFTER_SECONDS = 5;

/**
 * Counts one client's requests, live streams and daily tokens, exactly: one object per client
 * identity (see `limiterFor`), and every method runs start to finish without awaiting, so calls
 * that arrive together are applied one at a time and cannot overshoot a limit.
 *
 * @example
 * const admission = await limiterFor(env.RATE_LIMITER, "key:web").acquire({ rpm: 60, maxStreams: 5 }, true, 0);
 */
export class RateLimiter extends DurableObject<Env> {
  readonly #window = new SlidingWindow();
  readonly #slots: StreamSlots;
  readonly #budget: DailyBudget;
  /** The latest time seen: a clock that steps back must not reorder the window. */
  #now = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#slots = new StreamSlots(ctx.storage.sql);
    this.#budget = new DailyBudget(ctx.storage.sql);
  }

  /**
   * Counts one request against `limits.rpm` (a sliding 60-second window, exact); when `stream`,
   * also takes one of `limits.maxStreams` concurrent-stream slots; when a daily token budget
   * applies, reserves `reserveTokens` of it, refusing a request whose reservation does not fit in
   * what is left. Refused requests are not counted and take nothing. Throws a `RangeError` for
   * limits that are not whole numbers (`rpm` at least 1, `maxStreams` at least 0).
   */
  acquire(limits: Limits, stream: boolean, reserveTokens = 0): Admission {
    const { rpm, maxStreams } = limits;
    const budget = limits.tokensPerDay ?? null;
    if (!Number.isSafeInteger(rpm) || rpm < 1 || !Number.isSafeInteger(maxStreams) || maxStreams < 0) {
      throw new RangeError(`invalid limits: rpm=${rpm}, maxStreams=${maxStreams}`);
    }
    const now = this.#tick();
    const window = this.#window;
    const state = { limit: rpm, remaining: Math.max(0, rpm - window.size), resetMs: window.resetMs(now) };

    if (window.size >= rpm) {
      return { ok: false, reason: "requests", ...state, retryAfterSeconds: retryAfterSeconds(window.waitMs(now, rpm)) };
    }
    if (stream && this.#slots.size >= maxStreams) {
      return { ok: false, reason: "streams", ...state, retryAfterSeconds: STREAM_RETRY_AFTER_SECONDS };
    }
    if (budget !== null) {
      const tokensLeft = this.#budget.left(now, budget);
      if (Math.ceil(reserveTokens) > tokensLeft) {
        const retry = retryAfterSeconds(nextUtcDay(now) - now);
        return { ok: false, reason: "budget", ...state, retryAfterSeconds: retry, tokensLeft };
      }
    }

    window.add(now);
    const reservation = budget === null ? null : this.#budget.reserve(now, reserveTokens);
    const slot = stream ? this.#slots.take(now) : null;
    return { ok: true, limit: rpm, remaining: rpm - window.size, resetMs: WINDOW_MS, slot, reservation };
  }

  /**
   * Ends an admitted request in one call: frees its stream slot and settles its reservation at the
   * tokens it really spent. Either may be null; both are idempotent.
   */
  finish(slot: string | null, reservation: string | null, tokens: number): void {
    if (slot !== null) this.#slots.release(slot);
    if (reservation !== null) this.#budget.settle(reservation, tokens);
  }

  /**
   * Adds `tokens` to an open reservation (a long session that spends as it goes) if they fit in
   * what is left of `tokensPerDay`; false when they do not, or the reservation is no longer open.
   */
  extend(reservation: string, tokens: number, tokensPerDay: number): boolean {
    const now = this.#tick();
    if (Math.ceil(tokens) > this.#budget.left(now, tokensPerDay)) return false;
    return this.#budget.grow(reservation, tokens);
  }

  /** Tokens spent and reserved on `day` (UTC, YYYY-MM-DD). */
  usedOn(day: string): { spent: number; reserved: number } {
    return this.#budget.usedOn(day);
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
