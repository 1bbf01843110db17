import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { utcDay } from "../lib/time";
import { ABANDONED_AFTER_MS } from "./ceiling";
import { type CeilingHold, CeilingSlice, sliceSize } from "./ceiling-lease";

/** A ceiling object no other test touches. */
function freshCeiling() {
  return env.SPEND_CEILING.getByName(`test-${crypto.randomUUID()}`);
}

const today = () => utcDay(Date.now());

afterEach(() => {
  vi.useRealTimers();
});

describe("SpendCeiling", () => {
  it("lends no more than the ceiling leaves, and a slice never shrinks below what its isolate may be using", async () => {
    const ceiling = freshCeiling();
    const day = today();
    const first = await ceiling.renew({ lease: null, day, spentUsd: 0, wantUsd: 6, needUsd: 1 }, 10, 20_000);
    expect(first).toMatchObject({ ok: true, grantedUsd: 6 });
    const second = await ceiling.renew({ lease: null, day, spentUsd: 0, wantUsd: 6, needUsd: 1 }, 10, 20_000);
    expect(second).toMatchObject({ ok: true, grantedUsd: 4 });
    // Nothing left: refused, whoever asks.
    expect(await ceiling.renew({ lease: null, day, spentUsd: 0, wantUsd: 1, needUsd: 0.5 }, 10, 20_000)).toMatchObject({
      ok: false,
      grantedUsd: 0,
    });
    // The first isolate reports $2 spent and asks for less than it held: it keeps what it may be using.
    const renewed = await ceiling.renew({ lease: first.lease, day, spentUsd: 2, wantUsd: 1, needUsd: 1 }, 10, 20_000);
    expect(renewed).toMatchObject({ ok: true, grantedUsd: 4 });
    expect(await ceiling.stateOf(day)).toMatchObject({ spentUsd: 2, lentUsd: 8, leases: 2 });
  });

  it("takes back a returned slice, counting what it spent", async () => {
    const ceiling = freshCeiling();
    const day = today();
    const slice = await ceiling.renew({ lease: null, day, spentUsd: 0, wantUsd: 3, needUsd: 1 }, 10, 20_000);
    await ceiling.renew({ lease: slice.lease, day, spentUsd: 0.75, wantUsd: 0, needUsd: 0 }, 10, 20_000);
    expect(await ceiling.stateOf(day)).toEqual({ spentUsd: 0.75, lentUsd: 0, leases: 0 });
  });

  it("counts a slice abandoned by an isolate that died as spent in full", async () => {
    const ceiling = freshCeiling();
    const t0 = Date.UTC(2026, 4, 1, 12);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(t0);
    const day = today();
    await ceiling.renew({ lease: null, day, spentUsd: 0, wantUsd: 2, needUsd: 1 }, 10, 20_000);
    vi.setSystemTime(t0 + 20_000 + ABANDONED_AFTER_MS - 1);
    expect(await ceiling.stateOf(day)).toMatchObject({ spentUsd: 0, lentUsd: 2 });
    vi.setSystemTime(t0 + 20_000 + ABANDONED_AFTER_MS);
    expect(await ceiling.stateOf(day)).toEqual({ spentUsd: 2, lentUsd: 0, leases: 0 });
  });

  it("keeps each UTC day apart", async () => {
    const ceiling = freshCeiling();
    await ceiling.renew({ lease: null, day: "2026-05-01", spentUsd: 0, wantUsd: 10, needUsd: 10 }, 10, 20_000);
    expect(
      await ceiling.renew({ lease: null, day: "2026-05-02", spentUsd: 0, wantUsd: 10, needUsd: 10 }, 10, 20_000),
    ).toMatchObject({ ok: true });
  });
});

describe("CeilingSlice", () => {
  it("asks for a small part of the ceiling beyond a request's need: 1 % to 10 %", () => {
    expect(sliceSize(0.001, 10)).toBe(0.1);
    expect(sliceSize(0.2, 10)).toBe(0.4);
    expect(sliceSize(5, 10)).toBe(1);
  });

  it("serves requests from its slice without asking the ceiling each time", async () => {
    const ceiling = freshCeiling();
    let renewals = 0;
    const counted = {
      renew: (...args: Parameters<typeof ceiling.renew>) => {
        renewals++;
        return ceiling.renew(...args);
      },
    } as unknown as typeof ceiling;
    const slice = new CeilingSlice();
    const options = { limitUsd: 10, leaseMs: 20_000 };
    const holds = [];
    for (let i = 0; i < 10; i++) holds.push(await slice.reserve(() => counted, 0.01, options));
    expect(holds.every((hold) => hold !== null)).toBe(true);
    expect(renewals).toBe(1);
  });

  it("never lets 100 concurrent requests across several isolates spend past the ceiling", async () => {
    const ceiling = freshCeiling();
    const options = { limitUsd: 1, leaseMs: 400 };
    const isolates = Array.from({ length: 5 }, () => new CeilingSlice());
    // Each request reserves $0.03 and really costs between nothing and all of it.
    const holds = await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) => isolates[i % isolates.length]?.reserve(() => ceiling, 0.03, options) ?? null,
      ),
    );
    const admitted = holds.filter((hold): hold is CeilingHold => hold !== null);
    expect(admitted.length * 0.03).toBeLessThanOrEqual(1 + 1e-9);
    // Refusals come only once the ceiling is close: what every isolate strands is bounded.
    expect(admitted.length).toBeGreaterThanOrEqual(20);
    const costs = admitted.map((_, i) => (i % 3) * 0.01);
    await Promise.all(admitted.map((hold, i) => hold.settle(costs[i] ?? 0)));
    // Every slice has expired and come back: the ceiling knows exactly what was spent.
    const state = await ceiling.stateOf(today());
    expect(state.lentUsd).toBe(0);
    expect(state.spentUsd).toBeCloseTo(
      costs.reduce((a, b) => a + b, 0),
      9,
    );
    expect(state.spentUsd).toBeLessThanOrEqual(1);
  });

  it("returns an idle slice once it expires, so that other isolates can use it", async () => {
    const ceiling = freshCeiling();
    const options = { limitUsd: 1, leaseMs: 300 };
    const idle = new CeilingSlice();
    const hold = await idle.reserve(() => ceiling, 0.05, options);
    expect((await ceiling.stateOf(today())).lentUsd).toBeGreaterThan(0);
    // Settling the isolate's last request resolves once its slice is back at the ceiling.
    await hold?.settle(0.02);
    expect(await ceiling.stateOf(today())).toEqual({ spentUsd: 0.02, lentUsd: 0, leases: 0 });
    // All that was not spent is there for another isolate.
    expect(await new CeilingSlice().reserve(() => ceiling, 0.98, options)).not.toBeNull();
  });

  it("refuses a request the ceiling cannot cover, and admits it again when another isolate returns its slice", async () => {
    const ceiling = freshCeiling();
    const options = { limitUsd: 0.1, leaseMs: 300 };
    const a = new CeilingSlice();
    const b = new CeilingSlice();
    const big = await a.reserve(() => ceiling, 0.09, options);
    expect(big).not.toBeNull();
    expect(await b.reserve(() => ceiling, 0.05, options)).toBeNull();
    await big?.settle(0.01);
    expect(await b.reserve(() => ceiling, 0.05, options)).not.toBeNull();
  });

  it("leaves a refused request's isolate holding no more than it did: others can still spend", async () => {
    const ceiling = freshCeiling();
    const options = { limitUsd: 10, leaseMs: 300 };
    const greedy = new CeilingSlice();
    expect(await greedy.reserve(() => ceiling, 10_000, options)).toBeNull();
    expect(await ceiling.stateOf(today())).toMatchObject({ lentUsd: 0 });
    expect(await new CeilingSlice().reserve(() => ceiling, 5, options)).not.toBeNull();
  });

  it("returns an idle slice whatever its reservations summed to in floating point", async () => {
    const ceiling = freshCeiling();
    const options = { limitUsd: 10, leaseMs: 300 };
    const slice = new CeilingSlice();
    // 0.1 + 0.2 - 0.1 - 0.2 is not 0 in floating point.
    const holds = [await slice.reserve(() => ceiling, 0.1, options), await slice.reserve(() => ceiling, 0.2, options)];
    await Promise.all(holds.map((hold) => hold?.settle(0.05)));
    expect(await ceiling.stateOf(today())).toEqual({ spentUsd: 0.1, lentUsd: 0, leases: 0 });
  });

  it("never lends out twice what a renewal reports as spent while it is on its way", async () => {
    const ceiling = freshCeiling();
    const options = { limitUsd: 1, leaseMs: 3000 };
    const slice = new CeilingSlice();
    const first = await slice.reserve(() => ceiling, 0.05, options); // a slice of 0.05 + 0.10
    expect(await new CeilingSlice().reserve(() => ceiling, 0.8, options)).not.toBeNull(); // the rest, elsewhere
    void first?.settle(0.14); // spent 0.14 of the slice: 0.01 left in it
    // One request renews; another arrives meanwhile and must not take the 0.14 being reported.
    const [a, b] = await Promise.all([
      slice.reserve(() => ceiling, 0.05, options),
      slice.reserve(() => ceiling, 0.14, options),
    ]);
    const state = await ceiling.stateOf(today());
    const admitted = (a === null ? 0 : 0.05) + (b === null ? 0 : 0.14);
    expect(state.spentUsd + state.lentUsd).toBeLessThanOrEqual(1 + 1e-9);
    expect(0.14 + admitted).toBeLessThanOrEqual(1 - 0.8 + 1e-9);
  });
});
