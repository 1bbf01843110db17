import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RESERVATION_EXPIRY_MS } from "./budget";
import { limiterFor } from "./client";
import { type Admission, type Limits, RateLimiter } from "./rate-limiter";
import { MAX_STREAM_MS } from "./slots";
import { WINDOW_MS } from "./window";

/** A limiter no other test touches. */
function freshLimiter() {
  return limiterFor(env.RATE_LIMITER, `key:test-${crypto.randomUUID()}`);
}

const T0 = Date.UTC(2026, 4, 1);

/**
 * Sets the clock to `ms` after T0. Only `Date` is faked: the limiter runs in the tests' isolate,
 * so it reads the same clock.
 */
function at(ms: number) {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0 + ms);
}

afterEach(() => {
  vi.useRealTimers();
});

const RPM_3: Limits = { rpm: 3, maxStreams: 5 };
/** Where the budgets stand when none applies, at T0 (a midnight UTC). */
const NO_BUDGET = { tokens: null, usd: null, resetMs: 86_400_000 };

describe("RateLimiter: requests per minute", () => {
  it("lets exactly rpm of 100 concurrent requests through", async () => {
    const limiter = freshLimiter();
    const results = await Promise.all(
      Array.from({ length: 100 }, () => limiter.acquire({ rpm: 10, maxStreams: 5 }, false)),
    );
    const admitted = results.filter((r) => r.ok);
    expect(admitted).toHaveLength(10);
    expect(admitted.map((r) => r.remaining).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(results.filter((r) => !r.ok && r.reason === "requests")).toHaveLength(90);
  });

  it("counts remaining down and refuses with remaining 0 once the limit is reached", async () => {
    at(0);
    const limiter = freshLimiter();
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await limiter.acquire(RPM_3, false));
    expect(results).toEqual([
      { ok: true, limit: 3, remaining: 2, resetMs: WINDOW_MS, slot: null, reservation: null, budget: NO_BUDGET },
      { ok: true, limit: 3, remaining: 1, resetMs: WINDOW_MS, slot: null, reservation: null, budget: NO_BUDGET },
      { ok: true, limit: 3, remaining: 0, resetMs: WINDOW_MS, slot: null, reservation: null, budget: NO_BUDGET },
      {
        ok: false,
        reason: "requests",
        limit: 3,
        remaining: 0,
        resetMs: WINDOW_MS,
        retryAfterSeconds: 60,
        budget: NO_BUDGET,
      },
    ]);
  });

  it("slides the window: each request stops counting exactly 60 seconds after it was admitted", async () => {
    const limiter = freshLimiter();
    for (const t of [0, 20_000, 40_000]) {
      at(t);
      expect(await limiter.acquire(RPM_3, false)).toMatchObject({ ok: true });
    }
    at(50_000);
    // Retry once the first request leaves (10 s); the window is empty once the last one leaves (50 s).
    expect(await limiter.acquire(RPM_3, false)).toEqual({
      ok: false,
      reason: "requests",
      limit: 3,
      remaining: 0,
      resetMs: 50_000,
      retryAfterSeconds: 10,
      budget: { ...NO_BUDGET, resetMs: expect.any(Number) },
    });
    at(59_999);
    expect(await limiter.acquire(RPM_3, false)).toMatchObject({ ok: false, retryAfterSeconds: 1 });
    at(60_000);
    expect(await limiter.acquire(RPM_3, false)).toMatchObject({ ok: true, remaining: 0 });
    expect(await limiter.acquire(RPM_3, false)).toMatchObject({ ok: false, retryAfterSeconds: 20 });
    at(200_000);
    expect(await limiter.acquire(RPM_3, false)).toMatchObject({ ok: true, remaining: 2 });
  });

  it("does not count refused requests", async () => {
    at(0);
    const limiter = freshLimiter();
    for (let i = 0; i < 3; i++) await limiter.acquire(RPM_3, false);
    at(30_000);
    for (let i = 0; i < 5; i++) expect(await limiter.acquire(RPM_3, false)).toMatchObject({ ok: false });
    at(60_000);
    for (let i = 0; i < 3; i++) expect(await limiter.acquire(RPM_3, false)).toMatchObject({ ok: true });
  });

  it("keeps each client's count apart", async () => {
    const web = limiterFor(env.RATE_LIMITER, `key:web-${crypto.randomUUID()}`);
    const backend = limiterFor(env.RATE_LIMITER, `key:backend-${crypto.randomUUID()}`);
    for (let i = 0; i < 3; i++) await web.acquire(RPM_3, false);
    expect(await web.acquire(RPM_3, false)).toMatchObject({ ok: false });
    expect(await backend.acquire(RPM_3, false)).toMatchObject({ ok: true, remaining: 2 });
  });

  it("applies a lowered limit at once, and waits until enough requests have left the window", async () => {
    const limiter = freshLimiter();
    for (const t of [0, 10_000, 20_000]) {
      at(t);
      await limiter.acquire(RPM_3, false);
    }
    at(30_000);
    // rpm 2 with three in the window: one more fits once two have left, when the second leaves at 70 s.
    expect(await limiter.acquire({ rpm: 2, maxStreams: 5 }, false)).toMatchObject({
      ok: false,
      remaining: 0,
      retryAfterSeconds: 40,
    });
  });

  it("refuses limits that are not positive whole numbers", async () => {
    // Called in the object, not through the stub: a rejecting RPC call leaks an unhandled rejection
    // into vitest-pool-workers even when the test handles it (workers-sdk#14736).
    await runInDurableObject(freshLimiter(), (limiter) => {
      expect(() => limiter.acquire({ rpm: 0, maxStreams: 5 }, false)).toThrow(RangeError);
      expect(() => limiter.acquire({ rpm: 1.5, maxStreams: 5 }, false)).toThrow(/invalid limits/);
      expect(() => limiter.acquire({ rpm: 10, maxStreams: -1 }, true)).toThrow(/invalid limits/);
    });
  });
});

describe("RateLimiter: concurrent streams", () => {
  const STREAMS_2: Limits = { rpm: 100, maxStreams: 2 };

  it("gives out at most maxStreams slots, each a fresh UUID", async () => {
    const limiter = freshLimiter();
    const results = await Promise.all(Array.from({ length: 10 }, () => limiter.acquire(STREAMS_2, true)));
    const slots = results.flatMap((r) => (r.ok && r.slot !== null ? [r.slot] : []));
    expect(slots).toHaveLength(2);
    expect(new Set(slots).size).toBe(2);
    for (const slot of slots)
      expect(slot).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(results.filter((r) => !r.ok)).toEqual(
      Array(8).fill(expect.objectContaining({ ok: false, reason: "streams", retryAfterSeconds: 5 })),
    );
  });

  it("still admits requests that do not stream while every slot is taken", async () => {
    const limiter = freshLimiter();
    await limiter.acquire(STREAMS_2, true);
    await limiter.acquire(STREAMS_2, true);
    expect(await limiter.acquire(STREAMS_2, false)).toMatchObject({ ok: true, slot: null });
  });

  it("does not count a request refused for streams against the per-minute limit", async () => {
    const limiter = freshLimiter();
    const limits: Limits = { rpm: 5, maxStreams: 1 };
    await limiter.acquire(limits, true);
    for (let i = 0; i < 3; i++) {
      expect(await limiter.acquire(limits, true)).toMatchObject({ ok: false, reason: "streams", remaining: 4 });
    }
    expect(await limiter.acquire(limits, false)).toMatchObject({ ok: true, remaining: 3 });
  });

  it("frees one slot on release", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(STREAMS_2, true);
    await limiter.acquire(STREAMS_2, true);
    expect(await limiter.acquire(STREAMS_2, true)).toMatchObject({ ok: false, reason: "streams" });
    await limiter.finish(slotOf(first), null, { tokens: 0, usd: 0 });
    expect(await limiter.acquire(STREAMS_2, true)).toMatchObject({ ok: true, slot: expect.any(String) });
    expect(await limiter.acquire(STREAMS_2, true)).toMatchObject({ ok: false, reason: "streams" });
  });

  it("ignores a second release of the same slot, and unknown slots", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(STREAMS_2, true);
    await limiter.acquire(STREAMS_2, true);
    await limiter.finish(slotOf(first), null, { tokens: 0, usd: 0 });
    await limiter.finish(slotOf(first), null, { tokens: 0, usd: 0 });
    await limiter.finish("not-a-slot", null, { tokens: 0, usd: 0 });
    expect(await limiter.acquire(STREAMS_2, true)).toMatchObject({ ok: true });
    expect(await limiter.acquire(STREAMS_2, true)).toMatchObject({ ok: false, reason: "streams" });
  });

  it("frees a slot that is never released after MAX_STREAM_MS", async () => {
    const limiter = freshLimiter();
    const limits: Limits = { rpm: 100, maxStreams: 1 };
    at(0);
    await limiter.acquire(limits, true);
    at(MAX_STREAM_MS - 1);
    expect(await limiter.acquire(limits, true)).toMatchObject({ ok: false, reason: "streams" });
    at(MAX_STREAM_MS);
    const renewed = await limiter.acquire(limits, true);
    expect(renewed).toMatchObject({ ok: true });
    expect(await storedSlots(limiter)).toEqual([slotOf(renewed)]);
  });

  it("keeps live slots in SQLite, so a restarted object still knows them", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(STREAMS_2, true);
    const second = await limiter.acquire(STREAMS_2, true);
    expect(await storedSlots(limiter)).toEqual([slotOf(first), slotOf(second)].sort());
    await runInDurableObject(limiter, (_instance, state) => {
      const restarted = new RateLimiter(state, env);
      expect(restarted.acquire(STREAMS_2, true)).toMatchObject({ ok: false, reason: "streams" });
      restarted.finish(slotOf(first), null, { tokens: 0, usd: 0 });
      expect(restarted.acquire(STREAMS_2, true)).toMatchObject({ ok: true });
    });
  });

  it("deletes a released slot from SQLite", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(STREAMS_2, true);
    await limiter.finish(slotOf(first), null, { tokens: 0, usd: 0 });
    expect(await storedSlots(limiter)).toEqual([]);
  });
});

describe("limiterFor", () => {
  it("reaches the same object for the same client identity, and another for another", () => {
    const a = limiterFor(env.RATE_LIMITER, "sub:alice");
    expect(a.id.equals(limiterFor(env.RATE_LIMITER, "sub:alice").id)).toBe(true);
    expect(a.id.equals(limiterFor(env.RATE_LIMITER, "ip:203.0.113.9").id)).toBe(false);
  });
});

/** The slot id of an admission that took one. */
function slotOf(admission: Admission): string {
  if (!admission.ok || admission.slot === null) throw new Error(`no slot in ${JSON.stringify(admission)}`);
  return admission.slot;
}

/** The slot ids in the limiter's SQLite table, sorted. */
function storedSlots(limiter: DurableObjectStub<RateLimiter>): Promise<string[]> {
  return runInDurableObject(limiter, (_instance, state) =>
    state.storage.sql
      .exec<{ id: string }>("SELECT id FROM slots ORDER BY id")
      .toArray()
      .map((row) => row.id),
  );
}

describe("daily token budgets", () => {
  const limits = { rpm: 100_000, maxStreams: 100, tokensPerDay: 10_000 };
  const today = () => new Date().toISOString().slice(0, 10);

  it("admits exactly the reservations that fit under 50 concurrent requests, never more", async () => {
    const limiter = freshLimiter();
    const admissions = await Promise.all(
      Array.from({ length: 50 }, () => limiter.acquire(limits, false, { tokens: 900, usd: 0 })),
    );
    // 11 × 900 = 9 900 fits in 10 000; a 12th would not.
    expect(admissions.filter((a) => a.ok)).toHaveLength(11);
    expect(admissions.find((a) => !a.ok)).toMatchObject({
      ok: false,
      reason: "tokens",
      budget: { tokens: { remaining: 100 } },
    });
    expect((await limiter.usedOn(today())).reserved).toBe(9_900);
  });

  it("settles a reservation at the tokens really spent, freeing the rest", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(limits, false, { tokens: 10_000, usd: 0 });
    expect(first.ok).toBe(true);
    expect(await limiter.acquire(limits, false, { tokens: 10, usd: 0 })).toMatchObject({
      ok: false,
      reason: "tokens",
      budget: { tokens: { limit: 10_000, remaining: 0 } },
    });
    if (first.ok) await limiter.finish(null, first.reservation, { tokens: 1_234, usd: 0 });
    expect(await limiter.usedOn(today())).toMatchObject({ spent: 1_234, reserved: 0 });
    expect((await limiter.acquire(limits, false, { tokens: 10, usd: 0 })).ok).toBe(true);
  });

  it("settles at 0 what a request never spent, and settles once", async () => {
    const limiter = freshLimiter();
    const admission = await limiter.acquire(limits, false, { tokens: 700, usd: 0 });
    const reservation = admission.ok ? admission.reservation : null;
    expect(reservation).not.toBeNull();
    await limiter.finish(null, reservation, { tokens: 0, usd: 0 });
    await limiter.finish(null, reservation, { tokens: 5, usd: 0 });
    expect(await limiter.usedOn(today())).toMatchObject({ spent: 0, reserved: 0 });
  });

  it("refuses a reservation larger than what is left, saying how much is left, and admits one that fits", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(limits, false, { tokens: 6_000, usd: 0 });
    if (first.ok) await limiter.finish(null, first.reservation, { tokens: 6_000, usd: 0 });
    expect(await limiter.acquire(limits, false, { tokens: 4_001, usd: 0 })).toMatchObject({
      ok: false,
      reason: "tokens",
      budget: { tokens: { limit: 10_000, remaining: 4_000 } },
    });
    expect(await limiter.acquire(limits, false, { tokens: 4_000, usd: 0 })).toMatchObject({ ok: true });
  });

  it("refuses a spent budget until the next UTC day", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-11-27T23:00:00Z"));
    const limiter = freshLimiter();
    const first = await limiter.acquire(limits, false, { tokens: 10_000, usd: 0 });
    if (first.ok) await limiter.finish(null, first.reservation, { tokens: 10_000, usd: 0 });
    const refused = await limiter.acquire(limits, false, { tokens: 1, usd: 0 });
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.retryAfterSeconds).toBe(3600);
    vi.setSystemTime(new Date("2026-11-28T00:00:01Z"));
    expect((await limiter.acquire(limits, false, { tokens: 1, usd: 0 })).ok).toBe(true);
  });

  it("charges a reservation that is never settled in full once it expires", async () => {
    const limiter = freshLimiter();
    at(0);
    await limiter.acquire(limits, false, { tokens: 3_000, usd: 0 });
    at(RESERVATION_EXPIRY_MS);
    await limiter.acquire(limits, false, { tokens: 0, usd: 0 });
    expect(await limiter.usedOn(new Date(T0).toISOString().slice(0, 10))).toMatchObject({ spent: 3_000, reserved: 0 });
  });

  it("keeps a reservation that grows open: its expiry counts from its last growth (a long session)", async () => {
    const limiter = freshLimiter();
    at(0);
    const admission = await limiter.acquire(limits, false, { tokens: 1_000, usd: 0 });
    const reservation = admission.ok ? admission.reservation : null;
    if (reservation === null) throw new Error("no reservation");
    at(RESERVATION_EXPIRY_MS - 1);
    expect(await limiter.extend(reservation, { tokens: 500, usd: 0 }, limits)).toBe(true);
    at(RESERVATION_EXPIRY_MS + 1);
    await limiter.acquire(limits, false, { tokens: 0, usd: 0 });
    // Not charged in full at the first expiry: still open, and settled at what it spent.
    await limiter.finish(null, reservation, { tokens: 1_200, usd: 0 });
    expect(await limiter.usedOn(new Date(T0).toISOString().slice(0, 10))).toMatchObject({ spent: 1_200, reserved: 0 });
  });

  it("takes no reservation when no budget applies", async () => {
    const admission = await freshLimiter().acquire({ rpm: 10, maxStreams: 1 }, false, { tokens: 500, usd: 0 });
    expect(admission.ok && admission.reservation).toBeNull();
  });
});

describe("daily budgets in US dollars", () => {
  const limits = { rpm: 100_000, maxStreams: 100, usdPerDay: 0.5 };
  const today = () => new Date().toISOString().slice(0, 10);

  it("admits exactly the dollar reservations that fit under 50 concurrent requests", async () => {
    const limiter = freshLimiter();
    const admissions = await Promise.all(
      Array.from({ length: 50 }, () => limiter.acquire(limits, false, { tokens: 10, usd: 0.04 })),
    );
    // 12 × $0.04 = $0.48 fits in $0.50; a 13th would not.
    expect(admissions.filter((a) => a.ok)).toHaveLength(12);
    expect(admissions.find((a) => !a.ok)).toMatchObject({ ok: false, reason: "usd", budget: { tokens: null } });
    const refused = admissions.find((a) => !a.ok);
    expect(refused?.budget.usd?.remaining).toBeCloseTo(0.02, 10);
    expect((await limiter.usedOn(today())).reservedUsd).toBeCloseTo(0.48, 10);
  });

  it("settles at the real cost, and says what is left", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(limits, false, { tokens: 5_000, usd: 0.5 });
    expect(first).toMatchObject({ ok: true, budget: { usd: { limit: 0.5, remaining: 0 } } });
    if (first.ok) await limiter.finish(null, first.reservation, { tokens: 3_000, usd: 0.1 });
    expect(await limiter.usedOn(today())).toMatchObject({ spentUsd: 0.1, reservedUsd: 0 });
    const next = await limiter.acquire(limits, false, { tokens: 10, usd: 0.05 });
    expect(next.ok && next.budget.usd?.remaining).toBeCloseTo(0.35, 10);
  });

  it("holds a token budget and a dollar budget together: the first one reached refuses", async () => {
    const limiter = freshLimiter();
    const both = { ...limits, tokensPerDay: 1_000 };
    expect(await limiter.acquire(both, false, { tokens: 1_001, usd: 0.01 })).toMatchObject({
      ok: false,
      reason: "tokens",
    });
    expect(await limiter.acquire(both, false, { tokens: 10, usd: 0.51 })).toMatchObject({ ok: false, reason: "usd" });
    expect(await limiter.acquire(both, false, { tokens: 1_000, usd: 0.5 })).toMatchObject({ ok: true });
  });
});

describe("RateLimiter: slices (renew)", () => {
  const asking = (permits: number, reserve = { tokens: 0, usd: 0 }) => ({
    reserve,
    inFlight: { tokens: 0, usd: 0 },
    permits,
    room: { tokens: 0, usd: 0 },
  });
  const report = (lease: string, used: number[], sentAt = Date.now()) => ({
    lease,
    used,
    sentAt,
    spent: { tokens: 0, usd: 0 },
  });

  it("counts a lent request on its own clock, moved by how far the isolate's runs behind, never before the loan", async () => {
    at(0);
    const limiter = freshLimiter();
    const limits = { rpm: 10, maxStreams: 5 };
    const lease = crypto.randomUUID();
    const first = await limiter.renew({ ...report(lease, []), asking: asking(4) }, limits, 20_000);
    expect(first).toMatchObject({ ok: true, permits: 4 });
    // At 30 s an isolate whose clock runs 50 s behind reports requests it stamped -40 s and -39 s
    // (10 s and 11 s here), and one stamped before the loan even on this clock (counted from the loan).
    at(30_000);
    const behind = (ms: number) => T0 + ms - 50_000;
    const used = [behind(10_000), behind(11_000), behind(-5_000)];
    await limiter.renew({ ...report(lease, used, behind(30_000)), asking: null }, limits, 20_000);
    expect((await limiter.peek(limits)).requests.remaining).toBe(10 - 4);
    at(WINDOW_MS); // the asking request (0 s) and the one counted from the loan leave
    expect((await limiter.peek(limits)).requests.remaining).toBe(10 - 2);
    at(WINDOW_MS + 10_000);
    expect((await limiter.peek(limits)).requests.remaining).toBe(10 - 1);
    at(WINDOW_MS + 11_000);
    expect((await limiter.peek(limits)).requests.remaining).toBe(10);
  });

  it("counts what a report says was used even when it no longer knows the loan (restarted, or a report sent twice)", async () => {
    at(0);
    const limiter = freshLimiter();
    const limits = { rpm: 10, maxStreams: 5 };
    await limiter.renew({ ...report(crypto.randomUUID(), [T0, T0, T0]), asking: null }, limits, 20_000);
    expect((await limiter.peek(limits)).requests.remaining).toBe(7);
  });

  it("refuses an asking request whose figures are not numbers, and books nothing odd", async () => {
    const limiter = freshLimiter();
    const limits = { rpm: 10, maxStreams: 5, tokensPerDay: 1_000 };
    const odd = await limiter.renew(
      { ...report(crypto.randomUUID(), []), asking: asking(0, { tokens: Number.NaN, usd: 0 }) },
      limits,
      20_000,
    );
    expect(odd).toMatchObject({ ok: false, reason: "tokens" });
    const spentNaN = { ...report(crypto.randomUUID(), []), spent: { tokens: Number.NaN, usd: Number.NaN } };
    await limiter.renew({ ...spentNaN, asking: asking(0, { tokens: 10, usd: 0 }) }, limits, 20_000);
    const used = await limiter.usedOn(new Date().toISOString().slice(0, 10));
    expect(Number.isFinite(used.spent) && Number.isFinite(used.reserved)).toBe(true);
  });

  it("books nothing more for a slice already charged in full when it expired", async () => {
    at(0);
    const limiter = freshLimiter();
    const limits = { rpm: 100, maxStreams: 5, tokensPerDay: 10_000 };
    const lease = crypto.randomUUID();
    await limiter.renew({ ...report(lease, []), asking: asking(0, { tokens: 900, usd: 0 }) }, limits, 20_000);
    at(RESERVATION_EXPIRY_MS);
    await limiter.peek(limits); // the object looks at the time
    expect(await limiter.usedOn("2026-05-01")).toMatchObject({ spent: 900, reserved: 0 });
    // The isolate comes back an hour later and reports what its request spent: already counted.
    const late = { ...report(lease, []), spent: { tokens: 300, usd: 0 } };
    await limiter.renew({ ...late, asking: null }, limits, 20_000);
    expect(await limiter.usedOn("2026-05-01")).toMatchObject({ spent: 900, reserved: 0 });
  });
});
