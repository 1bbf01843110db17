import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type Admission,
  formatReset,
  type Limits,
  limiterFor,
  MAX_STREAM_MS,
  parseKeyLimits,
  RateLimiter,
  rateLimitHeaders,
  WINDOW_MS,
} from ".";

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
      { ok: true, limit: 3, remaining: 2, resetMs: WINDOW_MS, slot: null, reservation: null },
      { ok: true, limit: 3, remaining: 1, resetMs: WINDOW_MS, slot: null, reservation: null },
      { ok: true, limit: 3, remaining: 0, resetMs: WINDOW_MS, slot: null, reservation: null },
      { ok: false, reason: "requests", limit: 3, remaining: 0, resetMs: WINDOW_MS, retryAfterSeconds: 60 },
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
    await limiter.release(slotOf(first));
    expect(await limiter.acquire(STREAMS_2, true)).toMatchObject({ ok: true, slot: expect.any(String) });
    expect(await limiter.acquire(STREAMS_2, true)).toMatchObject({ ok: false, reason: "streams" });
  });

  it("ignores a second release of the same slot, and unknown slots", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(STREAMS_2, true);
    await limiter.acquire(STREAMS_2, true);
    await limiter.release(slotOf(first));
    await limiter.release(slotOf(first));
    await limiter.release("not-a-slot");
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
      restarted.release(slotOf(first));
      expect(restarted.acquire(STREAMS_2, true)).toMatchObject({ ok: true });
    });
  });

  it("deletes a released slot from SQLite", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(STREAMS_2, true);
    await limiter.release(slotOf(first));
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

describe("formatReset", () => {
  it.each([
    [0, "0s"],
    [-5, "0s"],
    [Number.NaN, "0s"],
    [1, "1ms"],
    [120, "120ms"],
    [999, "999ms"],
    [999.2, "1s"],
    [1000, "1s"],
    [1050, "1.05s"],
    [1234, "1.234s"],
    [1500, "1.5s"],
    [60_000, "1m0s"],
    [61_500, "1m1.5s"],
    [360_000, "6m0s"],
    [3_600_000, "1h0m0s"],
    [3_723_004, "1h2m3.004s"],
  ])("writes %s ms as %s", (ms, expected) => {
    expect(formatReset(ms)).toBe(expected);
  });
});

describe("rateLimitHeaders", () => {
  it("tells an admitted request what is left, without retry-after", () => {
    const admission: Admission = { ok: true, limit: 60, remaining: 59, resetMs: 60_000, slot: null, reservation: null };
    expect(rateLimitHeaders(admission)).toEqual({
      "x-ratelimit-limit-requests": "60",
      "x-ratelimit-remaining-requests": "59",
      "x-ratelimit-reset-requests": "1m0s",
    });
  });

  it("adds retry-after in seconds to a refusal", () => {
    const admission: Admission = {
      ok: false,
      reason: "requests",
      limit: 10,
      remaining: 0,
      resetMs: 42_500,
      retryAfterSeconds: 3,
    };
    expect(rateLimitHeaders(admission)).toEqual({
      "x-ratelimit-limit-requests": "10",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "42.5s",
      "retry-after": "3",
    });
  });
});

describe("parseKeyLimits", () => {
  it("starts an entry at each name: and adds bare items to the entry before them", () => {
    expect(parseKeyLimits("backend:rpm=600,streams=50,web:rpm=30")).toEqual({
      limits: new Map([
        ["backend", { rpm: 600, maxStreams: 50 }],
        ["web", { rpm: 30 }],
      ]),
      errors: [],
    });
  });

  it("reads tokens_per_day as tokensPerDay, and tolerates spaces and empty items", () => {
    expect(parseKeyLimits(" web : tokens_per_day = 100000 , streams=2,, ")).toEqual({
      limits: new Map([["web", { tokensPerDay: 100_000, maxStreams: 2 }]]),
      errors: [],
    });
  });

  it("returns no limits and no errors when unset or empty", () => {
    expect(parseKeyLimits(undefined)).toEqual({ limits: new Map(), errors: [] });
    expect(parseKeyLimits("")).toEqual({ limits: new Map(), errors: [] });
  });

  it("reports every bad item at once, and still parses the good ones", () => {
    const { limits, errors } = parseKeyLimits(
      "rpm=5,web:rpm=abc,streams=0,burst=9,web:rpm=30,rpm=40,backend:,:rpm=1,app:rpm,big:rpm=99999999999999999,ok:rpm=7,tokens_per_day=-1",
    );
    expect(errors).toEqual([
      '"rpm=5": no key name before it (e.g. web:rpm=5)',
      '"web:rpm=abc": rpm must be a positive integer (got "abc")',
      '"streams=0": streams must be a positive integer (got "0")',
      '"burst=9": unknown limit "burst" (use rpm, streams or tokens_per_day)',
      '"web:rpm=30": web is listed twice',
      '"rpm=40": rpm is already set for web',
      '"backend:": no limit after the key name (e.g. backend:rpm=60)',
      '":rpm=1": a key name must be non-empty, without spaces',
      '"app:rpm": expected limit=value (e.g. rpm=60)',
      '"big:rpm=99999999999999999": rpm must be a positive integer (got "99999999999999999")',
      '"tokens_per_day=-1": tokens_per_day must be a positive integer (got "-1")',
    ]);
    expect(limits.get("web")).toEqual({ rpm: 30 });
    expect(limits.get("ok")).toEqual({ rpm: 7 });
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

  it("overspends by at most one reservation under 50 concurrent requests", async () => {
    const limiter = freshLimiter();
    const admissions = await Promise.all(Array.from({ length: 50 }, () => limiter.acquire(limits, false, 900)));
    const admitted = admissions.filter((a) => a.ok);
    // 12 × 900 = 10 800: the 12th was admitted with 9 900 reserved, the 13th found nothing left.
    expect(admitted).toHaveLength(12);
    const refused = admissions.find((a) => !a.ok);
    expect(refused && !refused.ok && refused.reason).toBe("budget");
    const day = new Date().toISOString().slice(0, 10);
    expect((await limiter.usedOn(day)).reserved).toBe(10_800);
  });

  it("settles a reservation with the tokens really used, freeing the rest", async () => {
    const limiter = freshLimiter();
    const first = await limiter.acquire(limits, false, 10_000);
    expect(first.ok).toBe(true);
    expect((await limiter.acquire(limits, false, 10)).ok).toBe(false);
    if (first.ok && first.reservation) await limiter.settle(first.reservation, 1_234);
    const day = new Date().toISOString().slice(0, 10);
    expect(await limiter.usedOn(day)).toEqual({ spent: 1_234, reserved: 0 });
    expect((await limiter.acquire(limits, false, 10)).ok).toBe(true);
  });

  it("charges the full reservation when usage is unknown, and settles once", async () => {
    const limiter = freshLimiter();
    const admission = await limiter.acquire(limits, false, 700);
    const reservation = admission.ok ? admission.reservation : null;
    expect(reservation).not.toBeNull();
    if (reservation) {
      await limiter.settle(reservation, null);
      await limiter.settle(reservation, 5);
    }
    expect(await limiter.usedOn(new Date().toISOString().slice(0, 10))).toEqual({ spent: 700, reserved: 0 });
  });

  it("refuses a spent budget until the next UTC day", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-11-27T23:00:00Z"));
    const limiter = freshLimiter();
    const first = await limiter.acquire(limits, false, 20_000);
    if (first.ok && first.reservation) await limiter.settle(first.reservation, 20_000);
    const refused = await limiter.acquire(limits, false, 1);
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.retryAfterSeconds).toBe(3600);
    vi.setSystemTime(new Date("2026-11-28T00:00:01Z"));
    expect((await limiter.acquire(limits, false, 1)).ok).toBe(true);
  });

  it("takes no reservation when no budget applies", async () => {
    const admission = await freshLimiter().acquire({ rpm: 10, maxStreams: 1 }, false, 500);
    expect(admission.ok && admission.reservation).toBeNull();
  });
});
