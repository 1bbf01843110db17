import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { utcDay } from "../lib/time";
import type { Amount } from "./budget";
import { limiterFor } from "./client";
import { ClientSlice, type SliceAdmission, sliceFor } from "./client-lease";
import type { Limits, RateLimiter } from "./rate-limiter";
import { WINDOW_MS } from "./window";

type Limiter = DurableObjectStub<RateLimiter>;

/** A limiter no other test touches, and how many times it was asked to renew a slice. */
function freshLimiter(): { limiter: Limiter; renewals: () => number } {
  const stub = limiterFor(env.RATE_LIMITER, `key:slice-${crypto.randomUUID()}`);
  let renewals = 0;
  const counted = {
    renew: (...args: Parameters<Limiter["renew"]>) => {
      renewals++;
      return stub.renew(...args);
    },
    acquire: (...args: Parameters<Limiter["acquire"]>) => stub.acquire(...args),
    finish: (...args: Parameters<Limiter["finish"]>) => stub.finish(...args),
    peek: (...args: Parameters<Limiter["peek"]>) => stub.peek(...args),
    usedOn: (...args: Parameters<Limiter["usedOn"]>) => stub.usedOn(...args),
  } as unknown as Limiter;
  return { limiter: counted, renewals: () => renewals };
}

const FREE: Amount = { tokens: 0, usd: 0 };
const LEASE_MS = 20_000;

afterEach(() => {
  vi.useRealTimers();
});

/** Admits one request through `slice`, or through the object alone when the slice is busy (as the middleware does). */
async function admit(slice: ClientSlice, limiter: Limiter, limits: Limits, reserve: Amount = FREE) {
  const sliced = await slice.admit(
    () => limiter,
    limits,
    reserve,
    LEASE_MS,
    (promise) => void promise,
  );
  if (sliced !== null) return { admission: sliced, settle: okHold(sliced) };
  const admission = await limiter.acquire(limits, false, reserve);
  const reservation = admission.ok ? admission.reservation : null;
  return {
    admission,
    settle: (spent: Amount) => (admission.ok ? limiter.finish(null, reservation, spent) : Promise.resolve()),
  };
}

function okHold(admission: SliceAdmission): (spent: Amount) => Promise<void> {
  return admission.ok ? (spent) => admission.hold.settle(spent) : () => Promise.resolve();
}

describe("ClientSlice: requests per minute", () => {
  it("never lets more than rpm through, whatever number of isolates share the client", async () => {
    const { limiter } = freshLimiter();
    const limits = { rpm: 30, maxStreams: 5 };
    const isolates = Array.from({ length: 5 }, () => new ClientSlice());
    let admitted = 0;
    // Five isolates, each with a run of requests one after another: their slices grow as they go.
    await Promise.all(
      isolates.map(async (slice) => {
        for (let i = 0; i < 20; i++) {
          const { admission } = await admit(slice, limiter, limits);
          if (admission.ok) admitted++;
        }
      }),
    );
    // Every request of the limit was either admitted or is still lent to an isolate: none lost, none extra.
    const lent = isolates.reduce((sum, slice) => sum + slice.state.permits, 0);
    expect(admitted + lent).toBe(30);
    expect((await limiter.peek(limits)).requests.remaining).toBe(0);
  });

  it("admits most requests of a busy client in memory, and reports each at the time it was admitted", async () => {
    const { limiter, renewals } = freshLimiter();
    const limits = { rpm: 10_000, maxStreams: 5 };
    const slice = new ClientSlice();
    const holds: ((spent: Amount) => Promise<void>)[] = [];
    for (let i = 0; i < 200; i++) {
      const { admission, settle } = await admit(slice, limiter, limits);
      expect(admission.ok).toBe(true);
      holds.push(settle);
    }
    // It asks for twice as many each time its slice runs out young: 1 + 2 + 4 + … passes 200 in 9 calls.
    expect(renewals()).toBeLessThanOrEqual(10);
    // The object counts every request the slice admitted, and those it still lends.
    const lent = slice.state.permits;
    expect((await limiter.peek(limits)).requests.remaining).toBe(10_000 - 200 - lent);
  });

  it("costs a client that calls now and then one call per request, and leaves nothing to return", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2026, 4, 1, 12);
    const { limiter, renewals } = freshLimiter();
    const limits = { rpm: 60, maxStreams: 5 };
    const slice = new ClientSlice();
    for (let i = 0; i < 3; i++) {
      vi.setSystemTime(t0 + i * 15_000);
      const { admission, settle } = await admit(slice, limiter, limits);
      expect(admission).toMatchObject({ ok: true, remaining: 60 - (i + 1) });
      // What a request spent means nothing to a client without budgets: nothing to report.
      await settle({ tokens: 1_500, usd: 0.0005 });
      expect(slice.state.permits).toBe(0);
      expect(slice.idle).toBe(true);
    }
    expect(renewals()).toBe(3);
  });

  it("costs a client with a budget that calls now and then two calls per request, its spending booked at once", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2026, 4, 1, 12);
    const { limiter, renewals } = freshLimiter();
    const limits = { rpm: 60, maxStreams: 5, usdPerDay: 1 };
    const slice = new ClientSlice();
    for (let i = 0; i < 3; i++) {
      vi.setSystemTime(t0 + i * 15_000);
      const { admission, settle } = await admit(slice, limiter, limits, { tokens: 0, usd: 0.01 });
      expect(admission.ok).toBe(true);
      // Settled without waiting for the lease (the clock does not move): the slice lends nothing to wait for.
      await settle({ tokens: 0, usd: 0.004 });
      expect(slice.idle).toBe(true);
      expect(await limiter.usedOn(utcDay(t0))).toMatchObject({ reservedUsd: 0 });
      expect((await limiter.usedOn(utcDay(t0))).spentUsd).toBeCloseTo(0.004 * (i + 1), 12);
    }
    expect(renewals()).toBe(6);
  });

  it("counts requests lent to an isolate that died until a minute after its lease, then lets them go", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2026, 4, 1, 12);
    vi.setSystemTime(t0);
    const { limiter } = freshLimiter();
    const limits = { rpm: 10, maxStreams: 5 };
    const dead = new ClientSlice();
    // Four quick requests grow its slice: 1 + lent 1, then lent 2 …
    for (let i = 0; i < 4; i++) await admit(dead, limiter, limits);
    const lent = dead.state.permits;
    expect(lent).toBeGreaterThan(0);
    // Another isolate (asking the object for each request) gets only what the dead one does not hold.
    const room = 10 - 4 - lent;
    for (let i = 0; i < room; i++) expect((await limiter.acquire(limits, false)).ok).toBe(true);
    expect((await limiter.acquire(limits, false)).ok).toBe(false);
    expect((await limiter.peek(limits)).requests.remaining).toBe(0);
    // Once the requests admitted have left the window, what was lent still counts while the dead
    // isolate may have used it until its lease ended …
    vi.setSystemTime(t0 + LEASE_MS + WINDOW_MS - 1);
    expect((await limiter.peek(limits)).requests.remaining).toBe(10 - lent);
    // … and gets the lent requests back once they could no longer be in the window.
    vi.setSystemTime(t0 + LEASE_MS + WINDOW_MS);
    expect((await limiter.peek(limits)).requests.remaining).toBe(10);
  });

  it("gives back what a returned slice did not use, and counts what it used from when it used it", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2026, 4, 1, 12);
    vi.setSystemTime(t0);
    const { limiter } = freshLimiter();
    const limits = { rpm: 100, maxStreams: 5 };
    const slice = new ClientSlice();
    const settles: ((spent: Amount) => Promise<void>)[] = [];
    for (let i = 0; i < 8; i++) settles.push((await admit(slice, limiter, limits)).settle);
    expect(slice.state.permits).toBeGreaterThan(0);
    // The last request settles after the lease: the slice goes back.
    for (const settle of settles.slice(0, -1)) await settle(FREE);
    vi.setSystemTime(t0 + LEASE_MS);
    await settles.at(-1)?.(FREE);
    expect(slice.state.leased).toBe(false);
    expect((await limiter.peek(limits)).requests.remaining).toBe(100 - 8);
    // Each request leaves the window a minute after it was admitted, not after the lease.
    vi.setSystemTime(t0 + WINDOW_MS);
    expect((await limiter.peek(limits)).requests.remaining).toBe(100);
  });
});

describe("ClientSlice: when calls go wrong", () => {
  it("is not left waiting when a renewal throws: the report goes with the next one, which admits", async () => {
    const { limiter } = freshLimiter();
    const limits = { rpm: 100, maxStreams: 5, tokensPerDay: 10_000 };
    const slice = new ClientSlice();
    const first = await admit(slice, limiter, limits, { tokens: 100, usd: 0 });
    await first.settle({ tokens: 0, usd: 0 }); // returned at once: nothing lent
    let fail = true;
    const flaky = {
      ...limiter,
      renew: (...args: Parameters<Limiter["renew"]>) => {
        if (fail) {
          fail = false;
          return Promise.reject(new Error("object restarting"));
        }
        return limiter.renew(...args);
      },
    } as unknown as Limiter;
    await expect(
      slice.admit(
        () => flaky,
        limits,
        { tokens: 100, usd: 0 },
        LEASE_MS,
        () => {},
      ),
    ).rejects.toThrow("object restarting");
    const again = await slice.admit(
      () => flaky,
      limits,
      { tokens: 100, usd: 0 },
      LEASE_MS,
      () => {},
    );
    expect(again).toMatchObject({ ok: true });
  });

  it("returns what a refused renewal leaves when the last request settled while it was on its way", async () => {
    const { limiter } = freshLimiter();
    const limits = { rpm: 100, maxStreams: 5, usdPerDay: 1 };
    const slice = new ClientSlice();
    const pending: Promise<unknown>[] = [];
    const waitUntil = (promise: Promise<unknown>) => void pending.push(promise);
    const first = await slice.admit(() => limiter, limits, { tokens: 0, usd: 0.3 }, LEASE_MS, waitUntil);
    if (first === null || !first.ok) throw new Error("the first request must be admitted");
    // The second asks for more than is left; the first settles while that renewal is on its way.
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const slow = {
      renew: async (...args: Parameters<Limiter["renew"]>) => {
        await gate;
        return limiter.renew(...args);
      },
    } as unknown as Limiter;
    const second = slice.admit(() => slow, limits, { tokens: 0, usd: 0.8 }, LEASE_MS, waitUntil);
    await first.hold.settle({ tokens: 0, usd: 0.1 });
    open();
    expect(await second).toMatchObject({ ok: false, reason: "usd" });
    await Promise.all(pending);
    // Nothing stays held: the object booked the $0.10 spent and holds nothing for the slice.
    expect(slice.idle).toBe(true);
    const used = await limiter.usedOn(utcDay(Date.now()));
    expect(used.spentUsd).toBeCloseTo(0.1, 12);
    expect(used.reservedUsd).toBe(0);
  });
});

describe("sliceFor", () => {
  it("gives one slice per client and limits: two tokens of one subject with different limits never share one", () => {
    const id = `sub:${crypto.randomUUID()}`;
    const slow = { rpm: 10, maxStreams: 5 };
    expect(sliceFor(id, slow)).toBe(sliceFor(id, { ...slow }));
    expect(sliceFor(id, slow)).not.toBe(sliceFor(id, { rpm: 100, maxStreams: 5 }));
    expect(sliceFor(id, slow)).not.toBe(sliceFor(id, { ...slow, usdPerDay: 1 }));
  });
});

describe("ClientSlice: daily budgets", () => {
  const today = () => utcDay(Date.now());

  it("never reserves more than the budget across isolates, and books exactly what was spent", async () => {
    const { limiter } = freshLimiter();
    const limits = { rpm: 100_000, maxStreams: 5, tokensPerDay: 10_000 };
    const isolates = Array.from({ length: 5 }, () => new ClientSlice());
    const admitted: ((spent: Amount) => Promise<void>)[] = [];
    await Promise.all(
      isolates.map(async (slice) => {
        for (let i = 0; i < 10; i++) {
          const { admission, settle } = await admit(slice, limiter, limits, { tokens: 900, usd: 0 });
          if (admission.ok) admitted.push(settle);
        }
      }),
    );
    // 11 × 900 = 9 900 fits in 10 000; a 12th would not, wherever it was asked. Slices can strand
    // some (each holds room), never hand out more.
    expect(admitted.length).toBeLessThanOrEqual(11);
    expect(admitted.length).toBeGreaterThanOrEqual(5);
    const used = await limiter.usedOn(today());
    expect(used.spent + used.reserved).toBeLessThanOrEqual(10_000);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + LEASE_MS);
    await Promise.all(admitted.map((settle) => settle({ tokens: 100, usd: 0 })));
    expect(await limiter.usedOn(today())).toMatchObject({ spent: 100 * admitted.length, reserved: 0 });
  });

  it("holds a request's reservation in the slice and settles it there, reporting what it spent when it returns", async () => {
    const { limiter, renewals } = freshLimiter();
    const limits = { rpm: 100_000, maxStreams: 5, usdPerDay: 1 };
    const slice = new ClientSlice();
    const first = await admit(slice, limiter, limits, { tokens: 0, usd: 0.001 });
    const second = await admit(slice, limiter, limits, { tokens: 0, usd: 0.001 });
    const third = await admit(slice, limiter, limits, { tokens: 0, usd: 0.001 });
    expect([first, second, third].map((r) => r.admission.ok)).toEqual([true, true, true]);
    // The object holds the slice (its grant) and nothing is booked yet.
    expect((await limiter.usedOn(today())).spentUsd).toBe(0);
    await first.settle({ tokens: 0, usd: 0.0004 });
    await second.settle({ tokens: 0, usd: 0.0002 });
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + LEASE_MS);
    await third.settle({ tokens: 0, usd: 0.0001 });
    const used = await limiter.usedOn(today());
    expect(used.spentUsd).toBeCloseTo(0.0007, 12);
    expect(used.reservedUsd).toBe(0);
    expect(renewals()).toBeLessThanOrEqual(3);
  });

  it("refuses what the budget cannot cover, saying what is left, and keeps nothing when nothing is in flight", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2026, 4, 1, 12);
    vi.setSystemTime(t0);
    const { limiter } = freshLimiter();
    const limits = { rpm: 100, maxStreams: 5, tokensPerDay: 1_000 };
    const slice = new ClientSlice();
    const first = await admit(slice, limiter, limits, { tokens: 600, usd: 0 });
    vi.setSystemTime(t0 + LEASE_MS);
    await first.settle({ tokens: 600, usd: 0 });
    expect(slice.state.leased).toBe(false);
    const second = await admit(slice, limiter, limits, { tokens: 600, usd: 0 });
    expect(second.admission).toMatchObject({ ok: false, reason: "tokens", budget: { tokens: { remaining: 400 } } });
    expect(slice.state.granted).toEqual({ tokens: 0, usd: 0 });
    expect(slice.idle).toBe(true);
    expect(await limiter.usedOn(today())).toMatchObject({ spent: 600, reserved: 0 });
  });
});
