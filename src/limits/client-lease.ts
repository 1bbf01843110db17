import { utcDay } from "../lib/time";
import { type Amount, add, positive } from "./budget";
import { EPSILON } from "./ceiling";
import { sliceSize } from "./ceiling-lease";
import type { Admission, BudgetState, Limits, RateLimiter, SliceAnswer, SliceRenewal } from "./rate-limiter";

/** The client's Durable Object, made only when the slice must call it (most requests never do). */
type Limiter = () => DurableObjectStub<RateLimiter>;

/** Hands a promise to the request's `waitUntil`: it runs to its end even if the client goes away. */
type WaitUntil = (promise: Promise<unknown>) => void;

/** An admitted request's hold on its client's slice: settled at what it really spent. */
export type SliceHold = {
  /**
   * Settles the hold at `spent`. The promise settles once the slice no longer needs this request:
   * at once, or, when this was the slice's last use, once the slice has been returned (after its
   * lease when it still lends requests): hand it to `waitUntil`.
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
/** A renewal or return not back after this long is taken for lost (its request's `waitUntil` ended). */
const STALE_CALL_MS = 60_000;
const NO_AMOUNT: Amount = { tokens: 0, usd: 0 };

/**
 * One isolate's slice of one client's limits (see `RateLimiter.renew`): requests per minute it may
 * admit on its own, and what it holds of the client's daily budgets, until its lease expires. A
 * request the slice can cover is admitted in memory, with no round trip; one it cannot renews the
 * slice, which reports what the slice did (when each of its requests was admitted, what the
 * settled ones spent) and admits the request in the same call. A slice asks for more requests only
 * while they run out quickly (it doubles what it asks each time its lease ran out in less than half
 * its life, and halves it otherwise). A slice that lends no requests is returned as soon as its
 * last request settles (when there is something to report: spending against a budget), so a
 * client that calls now and then costs what it cost without slices: one call per request, two with
 * a budget. At most one call is on its way at a time; requests that arrive meanwhile get null and
 * are admitted one by one by the object, which stays exact. Calls run in the request's `waitUntil`,
 * so a client that goes away cannot leave the slice waiting for an answer that never comes.
 * Nothing here awaits a promise that another request made.
 *
 * @example
 * const admission = await sliceFor("key:web", limits).admit(() => limiterFor(env.RATE_LIMITER, "key:web"), limits, reserve, 20_000, ctx.waitUntil.bind(ctx));
 * if (admission === null) // ask the object for this request alone
 */
export class ClientSlice {
  /** The slice's lease: chosen here, so that a call whose answer is lost can be repeated under it. */
  #lease: string = crypto.randomUUID();
  #leased = false;
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
  /** What settled requests spent against a budget, not yet reported. */
  #unreported: Amount = NO_AMOUNT;
  /** When the call on its way (a renewal or a return) left; null when none is. */
  #calling: number | null = null;
  /** Bumped by every use of the slice: the return waits until no request has used it since. */
  #uses = 0;
  /** How many requests the slice asks to admit on its own at its next renewal, and when it last renewed. */
  #ask = 0;
  #renewedAt = Number.NEGATIVE_INFINITY;
  /** Where the client stood at the last renewal, leaving out what this slice holds. */
  #seen: { remaining: number; budget: BudgetState } | null = null;

  /**
   * Admits one request that reserves `reserve` of the client's budgets: from the slice when it
   * covers it, else by renewing the slice. Null when a call is already on its way: the caller asks
   * the client's object for this request alone. `leaseMs` is how long a slice lasts.
   *
   * @throws what the client's Durable Object throws, when it cannot be reached.
   */
  async admit(
    limiter: Limiter,
    limits: Limits,
    reserve: Amount,
    leaseMs: number,
    waitUntil: WaitUntil,
  ): Promise<SliceAdmission | null> {
    const now = Date.now();
    this.#uses++;
    if (this.#usable(now, leaseMs) && this.#permits >= 1 && this.#covers(reserve, limits)) {
      this.#permits--;
      this.#used.push(now);
      return this.#admitted(limiter, reserve, limits, leaseMs);
    }
    if (this.#busy(now)) return null;

    // Lent requests go back with the report: none may be admitted while it is on its way.
    this.#permits = 0;
    this.#ask = now - this.#renewedAt < leaseMs / 2 ? Math.max(1, 2 * this.#ask) : Math.floor(this.#ask / 2);
    const permits = Math.min(this.#ask, MAX_PERMITS, Math.ceil(limits.rpm / 10));
    const asking = {
      reserve,
      inFlight: this.#inFlight,
      permits,
      room: permits === 0 ? NO_AMOUNT : room(reserve, limits),
    };
    const renewal = this.#call(limiter, limits, leaseMs, asking, now);
    waitUntil(renewal.catch(() => {}));
    let result: { admission: SliceAdmission } | { answer: SliceAnswer };
    try {
      result = await renewal;
    } catch (error) {
      // Nothing of the slice may be left for nobody to return (requests that settled meanwhile spent some of it).
      if (this.#holds === 0) waitUntil(this.#returnWhenIdle(limiter, limits, leaseMs));
      throw error;
    }
    if ("admission" in result) return result.admission;
    if (this.#holds === 0) waitUntil(this.#returnWhenIdle(limiter, limits, leaseMs));
    const { lease: _lease, expiresAt: _expiresAt, permits: _permits, granted: _granted, ...refusal } = result.answer;
    return refusal as Extract<SliceAdmission, { ok: false }>;
  }

  /** What this slice holds now, for tests: requests it may admit, what it holds of the budgets, in flight, spent but unreported. */
  get state(): { leased: boolean; permits: number; granted: Amount; inFlight: Amount; unreported: Amount } {
    return {
      leased: this.#leased,
      permits: this.#permits,
      granted: this.#granted,
      inFlight: this.#inFlight,
      unreported: this.#unreported,
    };
  }

  /** Whether the slice holds nothing the client's object does not know of: it may be forgotten once it has expired. */
  get idle(): boolean {
    return (
      this.#holds === 0 &&
      this.#calling === null &&
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

  /**
   * One call to the client's object: a renewal (`asking`) or a return (null). Reports what the
   * slice did and takes what the object answers; an admitted asking request takes its share of the
   * new grant in the same step, before any other request can (its admission is the answer then). Runs to its end in `waitUntil` whatever becomes of
   * the request that made it; a call whose answer is lost (it throws) puts the report back, to go
   * with the next one under the same lease (the object may then count it twice: on the safe side).
   */
  async #call(
    limiter: Limiter,
    limits: Limits,
    leaseMs: number,
    asking: SliceRenewal["asking"],
    now: number,
  ): Promise<{ admission: SliceAdmission } | { answer: SliceAnswer }> {
    const call = now;
    this.#calling = call;
    const used = this.#used;
    this.#used = [];
    const spent = this.#report();
    const lease = this.#lease;
    let answer: SliceAnswer;
    try {
      answer = await limiter().renew({ lease, used, spent, sentAt: now, asking }, limits, leaseMs);
    } catch (error) {
      if (this.#lease === lease) {
        this.#used = [...used, ...this.#used];
        this.#unreport(spent);
      }
      throw error;
    } finally {
      if (this.#calling === call) this.#calling = null;
    }
    // A call taken for lost (see `#busy`) whose answer comes after all changes nothing.
    if (this.#lease !== lease) return { answer: { ...answer, ok: false, reason: "requests", retryAfterSeconds: 1 } };
    if (asking === null) {
      this.#forget();
      return { answer };
    }
    this.#leased = true;
    this.#renewedAt = now;
    this.#expiresAt = answer.expiresAt;
    this.#day = utcDay(now);
    this.#permits = answer.permits;
    this.#granted = answer.granted;
    this.#seen = { remaining: answer.remaining, budget: answer.budget };
    return answer.ok ? { admission: this.#admitted(limiter, asking.reserve, limits, leaseMs) } : { answer };
  }

  /** Whether a call is on its way; one out for longer than `STALE_CALL_MS` is taken for lost, and its lease with it. */
  #busy(now: number): boolean {
    if (this.#calling === null) return false;
    if (now - this.#calling < STALE_CALL_MS) return true;
    // What the lost call reported may or may not have arrived: the object counts the old lease as
    // used in full if it did not; the slice starts afresh.
    this.#calling = null;
    this.#lease = crypto.randomUUID();
    this.#forget();
    this.#unreported = NO_AMOUNT;
    this.#used = [];
    return false;
  }

  /** The slice holds nothing any more: a new lease next time. */
  #forget(): void {
    this.#leased = false;
    this.#lease = crypto.randomUUID();
    this.#permits = 0;
    this.#granted = NO_AMOUNT;
  }

  #usable(now: number, leaseMs: number): boolean {
    const margin = Math.min(EXPIRY_MARGIN_MS, leaseMs / 4);
    return this.#leased && this.#calling === null && this.#day === utcDay(now) && now < this.#expiresAt - margin;
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
    const budgeted = limits.tokensPerDay != null || limits.usdPerDay != null;
    const held = budgeted
      ? { tokens: Math.max(0, Math.ceil(reserve.tokens)), usd: Math.max(0, reserve.usd) }
      : NO_AMOUNT;
    this.#inFlight = add(this.#inFlight, held);
    this.#holds++;
    let settled = false;
    const seen = this.#seen ?? { remaining: limits.rpm, budget: { tokens: null, usd: null, resetMs: 0 } };
    const left = this.#available();
    const { tokens, usd } = seen.budget;
    return {
      ok: true,
      limit: limits.rpm,
      remaining: Math.min(limits.rpm, seen.remaining + this.#permits),
      resetMs: 60_000,
      budget: {
        tokens:
          tokens === null
            ? null
            : { limit: tokens.limit, remaining: Math.min(tokens.limit, Math.max(0, tokens.remaining + left.tokens)) },
        usd:
          usd === null
            ? null
            : { limit: usd.limit, remaining: Math.min(usd.limit, Math.max(0, usd.remaining + left.usd)) },
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
          // Spending matters to the object only against a budget: without one there is nothing to report.
          if (budgeted) {
            this.#unreported = add(this.#unreported, {
              tokens: positive(Math.round(spent.tokens)),
              usd: positive(spent.usd),
            });
          }
          await this.#returnWhenIdle(limiter, limits, leaseMs);
        },
      },
    };
  }

  /**
   * Returns the slice once nothing needs it: at once when it lends no requests (there is nothing to
   * wait for), else once its lease has expired with no request using it since. Nothing to return
   * (a client without budgets that calls now and then): no call at all. Only the last request to
   * settle returns it; a call on its way returns or renews it itself.
   */
  async #returnWhenIdle(limiter: Limiter, limits: Limits, leaseMs: number): Promise<void> {
    if (this.idle || this.#holds > 0 || this.#calling !== null) return;
    if (this.#permits > 0) {
      const uses = this.#uses;
      const wait = this.#expiresAt - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (this.#uses !== uses || this.#holds > 0 || this.#calling !== null || this.idle) return;
    }
    await this.#call(limiter, limits, leaseMs, null, Date.now()).catch(() => {
      // Kept for the next renewal; if none comes, the object counts the slice as used in full.
    });
  }
}

/**
 * How much of the budgets a slice asks for beyond its requests' own needs: room for more requests
 * without a round trip, but a small part of each budget, since a slice is what an isolate can
 * strand: at least 1 % of the budget or twice the request, at most 10 % (as the spend ceiling's slices).
 */
function room(reserve: Amount, limits: Limits): Amount {
  const part = (limit: number | null | undefined, need: number) => (limit == null ? 0 : sliceSize(need, limit));
  return { tokens: Math.floor(part(limits.tokensPerDay, reserve.tokens)), usd: part(limits.usdPerDay, reserve.usd) };
}

/** This isolate's slices, one per client identity and limits; idle ones are forgotten once there are many. */
const slices = new Map<string, ClientSlice>();
/** How many slices an isolate keeps: beyond it, new clients are admitted one request at a time by their objects. */
const MAX_SLICES = 1_000;
/** How often, at most, a full isolate looks for slices to forget, in milliseconds. */
const SWEEP_EVERY_MS = 1_000;
let sweptAt = 0;

/**
 * This isolate's slice of one client's limits (`"key:web"`, `"sub:alice"`, `"ip:203.0.113.9"`):
 * one per set of limits too (two tokens of one subject may carry different ones, and must not
 * share a slice). Null when the isolate already holds `MAX_SLICES` slices in use: the request is
 * then admitted by the client's object alone.
 *
 * @example
 * const slice = sliceFor(client.id, limits);
 * const admission = slice === null ? null : await slice.admit(limiter, limits, reserve, leaseMs, waitUntil);
 */
export function sliceFor(clientId: string, limits: Limits): ClientSlice | null {
  const key = `${clientId}\n${limits.rpm}\n${limits.tokensPerDay ?? ""}\n${limits.usdPerDay ?? ""}`;
  let slice = slices.get(key);
  if (slice !== undefined) return slice;
  if (slices.size >= MAX_SLICES) {
    const now = Date.now();
    if (now - sweptAt < SWEEP_EVERY_MS) return null;
    sweptAt = now;
    for (const [id, held] of slices) if (held.spent(now)) slices.delete(id);
    if (slices.size >= MAX_SLICES) return null;
  }
  slice = new ClientSlice();
  slices.set(key, slice);
  return slice;
}
