import { describe, expect, it } from "vitest";
import { PRICE_TABLE, TABLE_FALLBACK_PRICE } from "../config";
import { costUsd } from "./cost";
import {
  type Ending,
  NOT_SENT,
  type Outcome,
  type Pricing,
  reservationCostUsd,
  type SpendContext,
  spendOf,
} from "./spend";
import { plainUsage } from "./usage";

const pricing: Pricing = { prices: PRICE_TABLE, fallbackPrice: TABLE_FALLBACK_PRICE };
const CHAT: SpendContext = {
  model: "gpt-4o-mini",
  billing: "tokens",
  reservation: { inputTokens: 400, inputEstimate: 100, outputTokens: 4096 },
};
const USAGE = plainUsage(90, 30);

function ended(ending: Ending, changes: Partial<Outcome> = {}): Outcome {
  return { ...NOT_SENT, ending, upstreamStatus: 200, headersAt: 1, firstOutputAt: 1, ...changes };
}

const mini = PRICE_TABLE.get("gpt-4o-mini");

describe("spendOf", () => {
  it("charges nothing when upstream never had the request, or refused it", () => {
    for (const outcome of [
      NOT_SENT,
      ended("unreachable", { upstreamStatus: null }),
      ended("upstream_error", { upstreamStatus: 500 }),
    ]) {
      expect(spendOf(outcome, CHAT, pricing)).toMatchObject({
        basis: "none",
        tokens: 0,
        costUsd: 0,
        incomplete: false,
      });
    }
  });

  it("charges upstream's usage whenever there is one, at the model's price", () => {
    for (const ending of ["complete", "cut", "cancelled"] as const) {
      const spend = spendOf(ended(ending, { usage: USAGE, stream: true }), CHAT, pricing);
      expect(spend).toMatchObject({ basis: "reported", tokens: 120, incomplete: false, costEstimated: false });
      expect(spend.costUsd).toBe(mini === undefined ? Number.NaN : costUsd(mini, USAGE));
    }
  });

  it("charges a stream the client left its input at most: it cannot pay less by leaving early", () => {
    const spend = spendOf(ended("cancelled", { stream: true, outputEvents: 1 }), CHAT, pricing);
    expect(spend).toMatchObject({ basis: "estimate", tokens: 401, incomplete: true });
  });

  it("charges a cut stream without usage the estimate: its likely input and an output token an event", () => {
    const spend = spendOf(ended("cut", { stream: true, outputEvents: 7 }), CHAT, pricing);
    expect(spend).toMatchObject({ basis: "estimate", tokens: 107, incomplete: true });
  });

  it("charges a cut stream the reservation when upstream bills output the stream does not show", () => {
    const reasoning = { ...CHAT, model: "o4-mini", unseenOutput: true };
    const spend = spendOf(ended("cancelled", { stream: true, outputEvents: 3 }), reasoning, pricing);
    expect(spend).toMatchObject({ basis: "reservation", tokens: 4496, incomplete: true });
  });

  it("charges the reservation when upstream had it and nothing can be known", () => {
    for (const outcome of [ended("timeout", { upstreamStatus: null }), ended("client_closed"), ended("complete")]) {
      expect(spendOf(outcome, CHAT, pricing)).toMatchObject({ basis: "reservation", tokens: 4496, incomplete: true });
    }
  });

  it("charges nothing for reads, and for other POSTs without usage", () => {
    expect(spendOf(ended("complete", { usage: USAGE }), { ...CHAT, billing: "free" }, pricing).tokens).toBe(0);
    expect(spendOf(ended("complete"), { ...CHAT, billing: "reported" }, pricing).basis).toBe("none");
    expect(spendOf(ended("complete", { usage: USAGE }), { ...CHAT, billing: "reported" }, pricing).basis).toBe(
      "reported",
    );
  });

  it("prices a model without a price at the fallback, and says so", () => {
    const spend = spendOf(ended("complete", { usage: USAGE }), { ...CHAT, model: "gpt-9-preview" }, pricing);
    expect(spend).toMatchObject({ basis: "reported", costEstimated: true });
    expect(spend.costUsd).toBe(costUsd(TABLE_FALLBACK_PRICE, USAGE));
    expect(spend.costUsd).toBeGreaterThan(costUsd(mini ?? TABLE_FALLBACK_PRICE, USAGE));
  });
});

describe("reservationCostUsd", () => {
  it("prices a token-billed reservation at the model's price, or the fallback, and others at 0", () => {
    expect(reservationCostUsd(CHAT, pricing)).toBe(costUsd(mini ?? TABLE_FALLBACK_PRICE, plainUsage(400, 4096)));
    const fallback = TABLE_FALLBACK_PRICE;
    expect(reservationCostUsd({ ...CHAT, model: "unknown" }, pricing)).toBe(
      (400 * Math.max(fallback.input, fallback.audioInput, fallback.imageInput) +
        4096 * Math.max(fallback.output, fallback.audioOutput, fallback.imageOutput)) /
        1e6,
    );
    expect(reservationCostUsd({ ...CHAT, billing: "reported" }, pricing)).toBe(0);
  });

  it("reserves a model that bills audio dearer than text at its audio rates: a request may be all audio", () => {
    // gpt-4o-audio-preview: text $2.50 / $10, audio $40 / $80 per million.
    const audio = { ...CHAT, model: "gpt-4o-audio-preview" };
    expect(reservationCostUsd(audio, pricing)).toBeCloseTo((400 * 40 + 4096 * 80) / 1e6, 12);
    // A cut stream's estimate is priced the same safe way; a reported usage at what it reports.
    const cut = spendOf(ended("cut", { stream: true, outputEvents: 10 }), audio, pricing);
    expect(cut.costUsd).toBeCloseTo((100 * 40 + 10 * 80) / 1e6, 12);
    const reported = spendOf(ended("complete", { usage: plainUsage(100, 10) }), audio, pricing);
    expect(reported.costUsd).toBeCloseTo((100 * 2.5 + 10 * 10) / 1e6, 12);
  });
});
