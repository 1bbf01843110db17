import { utcDay } from "../lib/time";
import { EPSILON, type Renewed, type SpendCeiling } from "./ceiling";

/** A request's hold on the spend ceiling: what it reserved, to be settled at what it really cost. */
export type CeilingHold = {
  readonly usd: number;
  /**
   * Settles the hold at `actualUsd`. The promise settles once the isolate's slice no longer needs
   * this request: at once, or, when this was the slice's last use, after the slice has expired and
   * been returned (hand it to `waitUntil`; it never outlives the slice's lifetime by much).
   */
  settle(actualUsd: number): Promise<void>;
  /** Keeps the isolate's slice alive at the ceiling until `done` settles: for a request that lasts longer than a slice (a long stream). */
  keepAlive(done: Promise<unknown>): Promise<void>;
};

/** The ceiling's Durable Object, made only when the slice must call it (most requests never do). */
type Ceiling = () => DurableObjectStub<SpendCeiling>;

/** Options of a reservation: the ceiling in US dollars per UTC day, and how long a slice lasts. */
export type CeilingOptions = { limitUsd: number; leaseMs: number };

/** Before its expiry, a slice is no longer used by new requests this long: they renew it instead. */
const EXPIRY_MARGIN_MS = 1_000;

/**
 * One isolate's slice of the daily spend ceiling (see `SpendCeiling`). Requests reserve their
 * worst-case cost from it in memory, with no round trip; when it does not hold enough, the
 * request renews it (reporting what settled requests spent and asking for more); when it expires
 * unused, it is returned. At most one renewal is on its way at a time; a request that finds the
 * slice short while one is, asks the ceiling for a slice of its own, returned when it settles.
 * Nothing here awaits a promise that another request made: each request awaits its own calls.
 *
 * @example
 * const hold = await ceilingSlice.reserve(() => ceilingFor(env.SPEND_CEILING), 0.02, { limitUsd: 10, leaseMs: 20_000 });
 * if (hold === null) throw ceilingReached();
 */
export class CeilingSlice {
  #lease: string | null = null;
  #day = "";
  /** What the ceiling holds for this slice: never less than what this isolate has reserved or spent of it. */
  #grantedUsd = 0;
  #expiresAt = 0;
  /** Reservations of requests in flight, and how many there are (a float sum never quite returns to 0). */
  #inFlightUsd = 0;
  #holds = 0;
  /** What settled requests spent, not yet reported to the ceiling. */
  #unreportedUsd = 0;
  #renewing = false;
  #returning = false;
  /** Bumped by every use of the slice: the return waits until no request has used it since. */
  #uses = 0;

  /**
   * Reserves `usd` for one request: from the slice when it holds enough, else by renewing it.
   * Null when the ceiling cannot cover it: the request is refused.
   *
   * @throws what the ceiling's Durable Object throws, when it cannot be reached.
   */
  async reserve(
    ceiling: Ceiling,
    usd: number,
    options: CeilingOptions,
    waitUntil: (promise: Promise<unknown>) => void = () => {},
  ): Promise<CeilingHold | null> {
    const now = Date.now();
    this.#uses++;
    if (this.#usable(now) && this.#availableUsd() + EPSILON >= usd) return this.#take(ceiling, usd, options);
    if (this.#renewing || this.#returning) return this.#privateHold(ceiling, usd, options);
    // The renewal runs to its end in `waitUntil`, so that a client that goes away cannot leave the
    // isolate's slice waiting for an answer nobody takes.
    const renewal = this.#renew(ceiling, usd, options, now);
    waitUntil(renewal.catch(() => {}));
    return renewal;
  }

  /**
   * Renews the slice for a request that needs `usd`: reports what settled requests spent and asks
   * for more; takes the request's share in the same step, before any other request can.
   */
  async #renew(ceiling: Ceiling, usd: number, options: CeilingOptions, now: number): Promise<CeilingHold | null> {
    this.#renewing = true;
    const day = utcDay(now);
    // Everything settled so far is reported with the slice it was spent from (the ceiling books it
    // on that slice's day); requests still in flight, even from before midnight, stay covered.
    const reported = this.#report();
    const carried = this.#inFlightUsd;
    let renewed: Renewed;
    try {
      renewed = await ceiling().renew(
        {
          lease: this.#lease,
          day,
          spentUsd: reported,
          wantUsd: carried + usd + sliceSize(usd, options.limitUsd),
          needUsd: carried + usd,
        },
        options.limitUsd,
        options.leaseMs,
      );
    } catch (error) {
      this.#unreport(reported);
      throw error;
    } finally {
      this.#renewing = false;
    }
    this.#lease = renewed.lease;
    this.#day = renewed.day;
    this.#grantedUsd = renewed.grantedUsd;
    this.#expiresAt = renewed.expiresAt;
    if (!renewed.ok || this.#availableUsd() + EPSILON < usd) return null;
    return this.#take(ceiling, usd, options);
  }

  /** What this slice holds now, for tests and `GET /me`: granted, in flight, spent but unreported. */
  get state(): { grantedUsd: number; inFlightUsd: number; unreportedUsd: number; expiresAt: number } {
    return {
      grantedUsd: this.#grantedUsd,
      inFlightUsd: this.#inFlightUsd,
      unreportedUsd: this.#unreportedUsd,
      expiresAt: this.#expiresAt,
    };
  }

  #usable(now: number): boolean {
    return (
      this.#lease !== null && !this.#returning && this.#day === utcDay(now) && now < this.#expiresAt - EXPIRY_MARGIN_MS
    );
  }

  #availableUsd(): number {
    return this.#grantedUsd - this.#inFlightUsd - this.#unreportedUsd;
  }

  /**
   * Takes what settled requests spent out of the slice, to report it: out of what is unreported and
   * out of the grant together, so that while the report is on its way the money is not available
   * twice (the ceiling moves it from the slice to the day's spending).
   */
  #report(): number {
    const reported = this.#unreportedUsd;
    this.#unreportedUsd = 0;
    this.#grantedUsd = Math.max(0, this.#grantedUsd - reported);
    return reported;
  }

  /** Puts back a report that did not reach the ceiling. */
  #unreport(reported: number): void {
    this.#unreportedUsd += reported;
    this.#grantedUsd += reported;
  }

  #take(ceiling: Ceiling, usd: number, options: CeilingOptions): CeilingHold {
    this.#inFlightUsd += usd;
    this.#holds++;
    let settled = false;
    return {
      usd,
      settle: async (actualUsd) => {
        if (settled) return;
        settled = true;
        this.#holds--;
        this.#inFlightUsd = this.#holds === 0 ? 0 : Math.max(0, this.#inFlightUsd - usd);
        this.#unreportedUsd += Math.max(0, actualUsd);
        await this.#returnWhenIdle(ceiling, options);
      },
      keepAlive: (done) => this.#keepAlive(ceiling, done, options),
    };
  }

  /** When the slice has expired and no request used it since this one: reports what was spent and returns it. */
  async #returnWhenIdle(ceiling: Ceiling, options: CeilingOptions): Promise<void> {
    // The last request to settle returns the slice: the others wait for nothing.
    if (this.#holds > 0) return;
    const uses = this.#uses;
    const wait = this.#expiresAt - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (this.#uses !== uses || this.#holds > 0 || this.#renewing || this.#returning || this.#lease === null) {
      return;
    }
    this.#returning = true;
    const reported = this.#report();
    try {
      await ceiling().renew(
        { lease: this.#lease, day: this.#day, spentUsd: reported, wantUsd: 0, needUsd: 0 },
        options.limitUsd,
        options.leaseMs,
      );
      this.#lease = null;
      this.#grantedUsd = 0;
    } catch {
      this.#unreport(reported);
    } finally {
      this.#returning = false;
    }
  }

  /** Renews the slice shortly before each expiry until `done`, so that a long request never outlives it at the ceiling. */
  async #keepAlive(ceiling: Ceiling, done: Promise<unknown>, options: CeilingOptions): Promise<void> {
    const request = settledFlag(done);
    while (!request.over) {
      await sleepUnless(done, Math.max(0, this.#expiresAt - Date.now() - 2 * EXPIRY_MARGIN_MS));
      // No slice to keep (returned, or closed at midnight): the next request takes a new one.
      if (this.#lease === null) return;
      if (request.over) continue;
      if (this.#renewing || this.#returning || this.#expiresAt - Date.now() > 2 * EXPIRY_MARGIN_MS) {
        // Another request is renewing it (or it was renewed): look again a little later.
        await new Promise((resolve) => setTimeout(resolve, EXPIRY_MARGIN_MS / 4));
        continue;
      }
      this.#renewing = true;
      const reported = this.#report();
      try {
        const renewed = await ceiling().renew(
          {
            lease: this.#lease,
            day: this.#day,
            spentUsd: reported,
            wantUsd: this.#inFlightUsd,
            needUsd: this.#inFlightUsd,
          },
          options.limitUsd,
          options.leaseMs,
        );
        this.#grantedUsd = renewed.grantedUsd;
        this.#expiresAt = renewed.expiresAt;
      } catch {
        this.#unreport(reported);
        return;
      } finally {
        this.#renewing = false;
      }
    }
  }

  /** A slice of the request's own, while another request renews the shared one: returned when it settles. */
  async #privateHold(ceiling: Ceiling, usd: number, options: CeilingOptions): Promise<CeilingHold | null> {
    const day = utcDay(Date.now());
    const renewed = await ceiling().renew(
      { lease: null, day, spentUsd: 0, wantUsd: usd, needUsd: usd },
      options.limitUsd,
      options.leaseMs,
    );
    if (!renewed.ok) {
      if (renewed.grantedUsd > 0) {
        await ceiling().renew(
          { lease: renewed.lease, day, spentUsd: 0, wantUsd: 0, needUsd: 0 },
          options.limitUsd,
          options.leaseMs,
        );
      }
      return null;
    }
    let settled = false;
    let expiresAt = renewed.expiresAt;
    return {
      usd,
      settle: async (actualUsd) => {
        if (settled) return;
        settled = true;
        await ceiling().renew(
          { lease: renewed.lease, day, spentUsd: Math.max(0, actualUsd), wantUsd: 0, needUsd: 0 },
          options.limitUsd,
          options.leaseMs,
        );
      },
      keepAlive: async (done) => {
        const request = settledFlag(done);
        while (!request.over) {
          await sleepUnless(done, Math.max(0, expiresAt - Date.now() - 2 * EXPIRY_MARGIN_MS));
          if (request.over) return;
          const again = await ceiling().renew(
            { lease: renewed.lease, day, spentUsd: 0, wantUsd: usd, needUsd: usd },
            options.limitUsd,
            options.leaseMs,
          );
          expiresAt = again.expiresAt;
        }
      },
    };
  }
}

/**
 * How much of a limit a slice asks for beyond a request's own need (in the limit's unit: dollars
 * of the ceiling, a client's tokens or dollars): room for more requests without a round trip, but
 * a small part of the limit, since a slice is what an isolate can strand: at least 1 % of the limit
 * or twice the request, at most 10 % of the limit.
 */
export function sliceSize(need: number, limit: number): number {
  return Math.min(limit / 10, Math.max(limit / 100, 2 * need));
}

/** A flag that turns true once `done` settles, either way. */
function settledFlag(done: Promise<unknown>): { readonly over: boolean } {
  const flag = { over: false };
  const end = () => {
    flag.over = true;
  };
  done.then(end, end);
  return flag;
}

/** Waits `ms`, or until `done` settles if that comes first. */
async function sleepUnless(done: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]).catch(() => {});
  clearTimeout(timer);
}

/** This isolate's slice of the spend ceiling. */
export const ceilingSlice = new CeilingSlice();
