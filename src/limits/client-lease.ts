import { utcDay } from "../lib/time";
import type { Amount } from "./budget";
import { EPSILON } from "./ceiling";
import type { Admission, BudgetState, Limits, RateLimiter, SliceAnswer } from "./rate-limiter";

/** The client's Durable Object, made only when the slice must call it (most requests never do). */
type Limiter = () => DurableObjectStub<RateLimiter>;

/** An admitted request's hold on its client's slice: settled at what it really spent. */
export type SliceHold = {
  /**
   * Settles the hold at `spent`. The promise settles once the slice no longer needs this request:
   * at once, or, when this was the slice's last use, after the slice has expired and been returned
   * (hand it to `waitUntil`).
   */
  settle(spent: Amount): Promise<void>;
};

/** `ClientSlice.admit`'s answer: an admission as the client's object would give it, with the hold to settle. */
export type SliceAdmission =
  | (Omit<Extract<Admission, { ok: true }>, "slot" | "reservation"> & { hold: SliceHold })
  | Extract<Admission, { ok: false }>;

/** Before its expiry, a slice admits no more requests this long (a quarter of a short lease): clocks of machines differ a little. */
const EXPIRY_MARGIN_MS = 1_000;
/** The most requests a slice asks to admit on its own: a busy isolate renews once per this many. */
const MAX_PERMITS = 1_000;
const NO_AMOUNT: Amount = { tokens: 0, usd: 0 };

/**
 * One isolate's slice of one client's limits (see `RateLimiter.renew`): requests per minute it may
 * admit on its own, and what it holds of the client's daily budgets, until its lease expires. A
 * request the slice can cover is admitted in memory, with no round trip; one it cannot renews the
 * slice, which reports what the slice did (when each of its requests was admitted, what the
 * settled ones spent) and admits the request in the same call. A slice asks for more requests only
 * while they run out quickly (it doubles what it asks each time its lease ran out in less than half
 * its life, and halves it otherwise), so a client that calls now and then costs one call per
 * request, as without slices, and leaves nothing to return. At most one renewal is on its way at a
 * time; requests that arrive meanwhile get null and are admitted one by one by the object, which
 * stays exact. Nothing here awaits a promise that another request made.
 *
 * @example
 * const admission = await sliceFor("key:web").admit(() => limiterFor(env.RATE_LIMITER, "key:web"), limits, { tokens: 0, usd: 0.002 }, 20_000);
 * if (admission === null) // ask the object for this request alone
 */
export class ClientSlice {
  #lease: string | null = null;
  #expiresAt = 0;
  #day = "";
  /** Requests the slice may still admit on its own, and when it admitted those it has not reported. */
  #permits = 0;
  #used: number[] = [];
  /** What the slice holds of the budgets (never less than what its requests reserved or spent of it). */
  #granted: Amount = NO_AMOUNT;
  /** Reservations of requests in flight, and how many there are (a float sum never quite returns to 0). */
  #inFlight: Amount = NO_AMOUNT;
  #holds = 0;
  /** What settled requests spent, not yet reported. */
  #unreported: Amount = NO_AMOUNT;
  #renewing = false;
  #returning = false;
  /** Bumped by every use of the slice: the return waits until no request has used it since. */
  #uses = 0;
  /** How many requests the slice asks to admit on its own at its next renewal, and when it last renewed. */
  #ask = 0;
  #renewedAt = Number.NEGATIVE_INFINITY;
  /** Where the client stood at the last renewal, leaving out what this slice holds. */
  #seen: { remaining: number; budget: BudgetState } | null = null;
  /**
   * Admits one request that reserves `reserve` of the client's budgets: from the slice when it
   * covers it, else by renewing the slice. Null when a renewal or return is already on its way: the
   * caller asks the client's object for this request alone. `leaseMs` is how long a slice lasts.
   *
   * @throws what the client's Durable Object throws, when it cannot be reached.
   */
  async admit(limiter: Limiter, limits: Limits, reserve: Amount, leaseMs: number): Promise<SliceAdmission | null> {
    const now = Date.now();
    this.#uses++;
    const budgeted = limits.tokensPerDay != null || limits.usdPerDay != null;
    if (this.#usable(now, leaseMs) && this.#permits >= 1 && (!budgeted || this.#covers(reserve, limits))) {
      this.#permits--;
      this.#used.push(now);
      return this.#admitted(limiter, reserve, limits, leaseMs);
    }
    if (this.#renewing || this.#returning) return null;

    this.#renewing = true;
    // Lent requests go back with the report: none may be admitted while it is on its way.
    this.#permits = 0;
    this.#ask = now - this.#renewedAt < leaseMs / 2 ? Math.max(1, 2 * this.#ask) : Math.floor(this.#ask / 2);
    const permits = Math.min(this.#ask, MAX_PERMITS, Math.ceil(limits.rpm / 10));
    const used = this.#used;
    this.#used = [];
    const spent = this.#report();
    let answer: SliceAnswer;
    try {
      answer = await limiter().renew(
        {
          lease: this.#lease,
          used,
          spent,
          asking: {
            reserve,
            inFlight: this.#inFlight,
            permits,
            room: permits === 0 ? NO_AMOUNT : room(reserve, limits),
          },
        },
        limits,
        leaseMs,
      );
    } catch (error) {
      this.#used = [...used, ...this.#used];
      this.#unreport(spent);
      throw error;
    } finally {
      this.#renewing = false;
    }
    this.#renewedAt = now;
    this.#lease = answer.lease;
    this.#expiresAt = answer.expiresAt;
    this.#day = utcDay(now);
    this.#permits = answer.permits;
    this.#granted = answer.granted;
    this.#seen = { remaining: answer.remaining, budget: answer.budget };
    if (!answer.ok) {
      const { lease: _lease, expiresAt: _expiresAt, permits: _permits, granted: _granted, ...refusal } = answer;
      return refusal;
    }
    return this.#admitted(limiter, reserve, limits, leaseMs);
  }

  /** What this slice holds now, for tests: requests it may admit, what it holds of the budgets, in flight, spent but unreported. */
  get state(): { lease: string | null; permits: number; granted: Amount; inFlight: Amount; unreported: Amount } {
    return {
      lease: this.#lease,
      permits: this.#permits,
      granted: this.#granted,
      inFlight: this.#inFlight,
      unreported: this.#unreported,
    };
  }

  #usable(now: number, leaseMs: number): boolean {
    const margin = Math.min(EXPIRY_MARGIN_MS, leaseMs / 4);
    return this.#lease !== null && !this.#returning && this.#day === utcDay(now) && now < this.#expiresAt - margin;
  }

  /** Whether what is left of the slice's budgets covers `reserve`, in each budget that applies. */
  #covers(reserve: Amount, limits: Limits): boolean {
    const left = this.#available();
    return (
      (limits.tokensPerDay == null || left.tokens >= Math.ceil(reserve.tokens)) &&
      (limits.usdPerDay == null || left.usd + EPSILON >= reserve.usd)
    );
  }

  #available(): Amount {
    return {
      tokens: this.#granted.tokens - this.#inFlight.tokens - this.#unreported.tokens,
      usd: this.#granted.usd - this.#inFlight.usd - this.#unreported.usd,
    };
  }

  /** Takes what settled requests spent out of the slice, to report it (see `CeilingSlice`). */
  #report(): Amount {
    const reported = this.#unreported;
    this.#unreported = NO_AMOUNT;
    this.#granted = {
      tokens: Math.max(0, this.#granted.tokens - reported.tokens),
      usd: Math.max(0, this.#granted.usd - reported.usd),
    };
    return reported;
  }

  /** Puts back a report that did not reach the object. */
  #unreport(reported: Amount): void {
    this.#unreported = add(this.#unreported, reported);
    this.#granted = add(this.#granted, reported);
  }

  /** An admitted request: its reservation held in the slice, the headers' figures as the client would see them. */
  #admitted(limiter: Limiter, reserve: Amount, limits: Limits, leaseMs: number): SliceAdmission {
    const held = { tokens: Math.max(0, Math.ceil(reserve.tokens)), usd: Math.max(0, reserve.usd) };
    this.#inFlight = add(this.#inFlight, held);
    this.#holds++;
    let settled = false;
    const seen = this.#seen ?? { remaining: limits.rpm, budget: { tokens: null, usd: null, resetMs: 0 } };
    const left = this.#available();
    const { tokens, usd } = seen.budget;
    return {
      ok: true,
      limit: limits.rpm,
      remaining: seen.remaining + this.#permits,
      resetMs: 60_000,
      budget: {
        tokens:
          tokens === null ? null : { limit: tokens.limit, remaining: Math.max(0, tokens.remaining + left.tokens) },
        usd: usd === null ? null : { limit: usd.limit, remaining: Math.max(0, usd.remaining + left.usd) },
        resetMs: seen.budget.resetMs,
      },
      hold: {
        settle: async (spent) => {
          if (settled) return;
          settled = true;
          this.#holds--;
          this.#inFlight =
            this.#holds === 0
              ? NO_AMOUNT
              : {
                  tokens: Math.max(0, this.#inFlight.tokens - held.tokens),
                  usd: Math.max(0, this.#inFlight.usd - held.usd),
                };
          this.#unreported = add(this.#unreported, {
            tokens: Math.max(0, Math.round(spent.tokens)),
            usd: Math.max(0, spent.usd),
          });
          await this.#returnWhenIdle(limiter, limits, leaseMs);
        },
      },
    };
  }

  /**
   * When the slice has expired and no request used it since this one: reports what it did and
   * returns it. A slice that holds nothing (no requests lent, no budget, nothing to report: a client
   * that calls now and then) has nothing to return, and nobody waits for it.
   */
  async #returnWhenIdle(limiter: Limiter, limits: Limits, leaseMs: number): Promise<void> {
    // The last request to settle returns the slice.
    if (this.idle || this.#holds > 0) return;
    const uses = this.#uses;
    const wait = this.#expiresAt - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (this.#uses !== uses || this.#holds > 0 || this.#renewing || this.#returning || this.#lease === null) return;
    this.#returning = true;
    this.#permits = 0;
    const used = this.#used;
    this.#used = [];
    const spent = this.#report();
    try {
      await limiter().renew({ lease: this.#lease, used, spent, asking: null }, limits, leaseMs);
      this.#lease = null;
      this.#granted = NO_AMOUNT;
    } catch {
      // Kept for the next renewal; if none comes, the object counts the slice as used in full.
      this.#used = [...used, ...this.#used];
      this.#unreport(spent);
    } finally {
      this.#returning = false;
    }
  }

  /** Whether the slice holds nothing the client's object does not know of: it may be forgotten once it has expired. */
  get idle(): boolean {
    return (
      this.#holds === 0 &&
      !this.#renewing &&
      !this.#returning &&
      this.#permits === 0 &&
      this.#used.length === 0 &&
      this.#granted.tokens <= 0 &&
      this.#granted.usd <= EPSILON &&
      this.#unreported.tokens <= 0 &&
      this.#unreported.usd <= EPSILON
    );
  }

  /** Whether the slice is idle and its lease over: nothing is lost by forgetting it. */
  spent(now: number): boolean {
    return this.idle && now >= this.#expiresAt;
  }
}

/**
 * How much of the budgets a slice asks for beyond its requests' own needs: room for more requests
 * without a round trip, but a small part of each budget, since a slice is what an isolate can
 * strand: at least 1 % of the budget or twice the request, at most 10 % (as the spend ceiling's slices).
 */
function room(reserve: Amount, limits: Limits): Amount {
  const part = (limit: number | null | undefined, need: number) =>
    limit == null ? 0 : Math.min(limit / 10, Math.max(limit / 100, 2 * need));
  return { tokens: Math.floor(part(limits.tokensPerDay, reserve.tokens)), usd: part(limits.usdPerDay, reserve.usd) };
}

function add(a: Amount, b: Amount): Amount {
  return { tokens: a.tokens + b.tokens, usd: a.usd + b.usd };
}

/** This isolate's slices, one per client identity; idle ones are forgotten once there are many. */
const slices = new Map<string, ClientSlice>();
/** How many slices an isolate keeps before it forgets the idle ones. */
const MAX_SLICES = 1_000;

/**
 * This isolate's slice of one client's limits (`"key:web"`, `"sub:alice"`, `"ip:203.0.113.9"`).
 *
 * @example
 * const admission = await sliceFor(client.id).admit(limiter, limits, reserve, config.ceiling.leaseMs);
 */
export function sliceFor(clientId: string): ClientSlice {
  let slice = slices.get(clientId);
  if (slice === undefined) {
    if (slices.size >= MAX_SLICES) {
      const now = Date.now();
      for (const [id, held] of slices) if (held.spent(now)) slices.delete(id);
    }
    slice = new ClientSlice();
    slices.set(clientId, slice);
  }
  return slice;
}
