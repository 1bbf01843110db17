import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { PRICE_TABLE } from "../config";
import { utcDay } from "../lib/time";
import { costUsd as costAt } from "./cost";
import { type UsageRecord, writeUsage } from "./ledger";
import { parseReportQuery, usageReport } from "./report";
import { plainUsage } from "./usage";

/** The cost of `usage` for a model of the price table. */
function costUsd(model: string, usage: { promptTokens: number; completionTokens: number; cachedTokens: number }) {
  const price = PRICE_TABLE.get(model);
  if (price === undefined) throw new Error(`no price for ${model}`);
  return costAt(price, { ...plainUsage(usage.promptTokens, usage.completionTokens), cachedTokens: usage.cachedTokens });
}

// Each test writes into its own days, so tests never see each other's records.

function record(overrides: Partial<UsageRecord> & Pick<UsageRecord, "ts">): UsageRecord {
  return {
    requestId: `req_${crypto.randomUUID()}`,
    client: "web",
    clientKind: "key",
    route: "/v1/chat/completions",
    model: "gpt-4o-mini",
    status: 200,
    promptTokens: 100,
    completionTokens: 20,
    totalTokens: 120,
    cachedTokens: 0,
    reasoningTokens: 0,
    costUsd: costUsd("gpt-4o-mini", { promptTokens: 100, completionTokens: 20, cachedTokens: 0 }),
    durationMs: 350,
    ttftMs: 120,
    incomplete: false,
    basis: "reported",
    costEstimated: false,
    ...overrides,
  };
}

describe("writeUsage", () => {
  it("writes every field, with the UTC day of its time", async () => {
    const ts = Date.UTC(2024, 0, 10, 23, 59, 59, 999);
    const written = record({
      ts,
      requestId: "req_ledger_fields",
      client: "alice",
      clientKind: "token",
      route: "/",
      model: "o3-mini",
      promptTokens: 500,
      completionTokens: 900,
      totalTokens: 1400,
      cachedTokens: 128,
      reasoningTokens: 640,
      costUsd: 0.0045,
      durationMs: 4200,
      ttftMs: null,
      incomplete: true,
      costEstimated: true,
      upstream: "azure",
      modelRequested: "smart",
    });
    await writeUsage(env.USAGE_DB, written);
    const row = await env.USAGE_DB.prepare("SELECT * FROM usage WHERE request_id = ?")
      .bind("req_ledger_fields")
      .first();
    expect(row).toEqual({
      id: expect.any(Number),
      basis: "reported",
      ts,
      day: "2024-01-10",
      request_id: "req_ledger_fields",
      client: "alice",
      client_kind: "token",
      route: "/",
      model: "o3-mini",
      status: 200,
      prompt_tokens: 500,
      completion_tokens: 900,
      total_tokens: 1400,
      cached_tokens: 128,
      reasoning_tokens: 640,
      cost_usd: 0.0045,
      duration_ms: 4200,
      ttft_ms: null,
      incomplete: 1,
      cost_estimated: 1,
      upstream: "azure",
      model_requested: "smart",
      record_id: null,
    });
  });

  it("writes a request without usage or model as nulls", async () => {
    await writeUsage(
      env.USAGE_DB,
      record({
        ts: Date.UTC(2024, 0, 11),
        requestId: "req_ledger_nulls",
        model: null,
        status: 502,
        promptTokens: null,
        completionTokens: null,
        totalTokens: null,
        cachedTokens: null,
        reasoningTokens: null,
        costUsd: null,
        ttftMs: null,
      }),
    );
    const row = await env.USAGE_DB.prepare(
      "SELECT model, prompt_tokens, cost_usd, incomplete FROM usage WHERE request_id = ?",
    )
      .bind("req_ledger_nulls")
      .first();
    expect(row).toEqual({ model: null, prompt_tokens: null, cost_usd: null, incomplete: 0 });
  });

  it("names the request when D1 refuses the write", async () => {
    const bad = record({ ts: Date.UTC(2024, 0, 12), requestId: "req_refused", clientKind: "robot" as "key" });
    await expect(writeUsage(env.USAGE_DB, bad)).rejects.toThrow(
      /^usage ledger: could not write the record of request req_refused: .*CHECK constraint failed/,
    );
  });

  it("writes many records in one statement, and a record written twice once", async () => {
    const ts = Date.UTC(2024, 0, 13);
    const batch = Array.from({ length: 40 }, (_, i) =>
      record({ ts: ts + i, requestId: `req_batch_${i}`, recordId: `rec_batch_${i}` }),
    );
    await writeUsage(env.USAGE_DB, batch);
    // The same batch again (a queue retry), and a few of its records with new ones.
    await writeUsage(env.USAGE_DB, batch);
    await writeUsage(env.USAGE_DB, [
      ...batch.slice(0, 5),
      record({ ts, requestId: "req_batch_new", recordId: "rec_batch_new" }),
    ]);
    const count = await env.USAGE_DB.prepare("SELECT COUNT(*) AS n FROM usage WHERE day = '2024-01-13'").first<{
      n: number;
    }>();
    expect(count?.n).toBe(41);
  });

  it("derives the day in UTC", () => {
    expect(utcDay(Date.UTC(2024, 1, 29, 0, 0, 0))).toBe("2024-02-29");
    expect(utcDay(Date.UTC(2024, 1, 28, 23, 59, 59, 999))).toBe("2024-02-28");
  });
});

describe("usageReport", () => {
  // Three days of March 2024: two key clients, an open-mode IP and a token; a model without a
  // known price, a request without a model, and two cut streams.
  const day1 = Date.UTC(2024, 2, 1, 9);
  const day2 = Date.UTC(2024, 2, 2, 15);
  const day3 = Date.UTC(2024, 2, 3, 23, 30);
  const gpt4o = (prompt: number, completion: number, cached = 0) =>
    costUsd("gpt-4o", { promptTokens: prompt, completionTokens: completion, cachedTokens: cached });
  const mini = (prompt: number, completion: number) =>
    costUsd("gpt-4o-mini", { promptTokens: prompt, completionTokens: completion, cachedTokens: 0 });
  const records: UsageRecord[] = [
    record({
      ts: day1,
      client: "web",
      model: "gpt-4o-mini",
      promptTokens: 100,
      completionTokens: 20,
      totalTokens: 120,
      costUsd: mini(100, 20),
    }),
    record({
      ts: day1 + 1,
      client: "web",
      model: "gpt-4o",
      promptTokens: 1000,
      completionTokens: 500,
      totalTokens: 1500,
      cachedTokens: 200,
      costUsd: gpt4o(1000, 500, 200),
    }),
    record({
      ts: day2,
      client: "backend",
      model: "gpt-4o",
      promptTokens: 2000,
      completionTokens: 1000,
      totalTokens: 3000,
      costUsd: gpt4o(2000, 1000),
    }),
    record({
      ts: day2 + 1,
      client: "backend",
      model: "my-model",
      promptTokens: 50000,
      completionTokens: 10000,
      totalTokens: 60000,
      costUsd: null,
    }),
    record({
      ts: day2 + 2,
      client: "203.0.113.9",
      clientKind: "ip",
      model: "gpt-4o-mini",
      promptTokens: 300,
      completionTokens: 40,
      totalTokens: 340,
      costUsd: mini(300, 40),
      incomplete: true,
    }),
    record({
      ts: day3,
      client: "alice",
      clientKind: "token",
      model: "my-model",
      promptTokens: 10,
      completionTokens: 5,
      totalTokens: 15,
      costUsd: null,
      incomplete: true,
      costEstimated: true,
    }),
    record({
      ts: day3 + 1,
      client: "alice",
      clientKind: "token",
      route: "/v1/models",
      model: null,
      status: 200,
      promptTokens: null,
      completionTokens: null,
      totalTokens: null,
      cachedTokens: null,
      reasoningTokens: null,
      costUsd: null,
    }),
    // Outside the period: the day before and the day after.
    record({ ts: Date.UTC(2024, 1, 29, 23, 59), client: "web", promptTokens: 9, completionTokens: 9, totalTokens: 18 }),
    record({ ts: Date.UTC(2024, 2, 4), client: "web", promptTokens: 9, completionTokens: 9, totalTokens: 18 }),
  ];
  const period = { from: "2024-03-01", to: "2024-03-03" };

  beforeAll(async () => {
    await Promise.all(records.map((r) => writeUsage(env.USAGE_DB, r)));
  });

  function report(groupBy: string) {
    return usageReport(env.USAGE_DB, parseReportQuery({ ...period, group_by: groupBy }, Date.UTC(2024, 5, 1)));
  }

  it("groups by client, most expensive first, with unknown prices as null", async () => {
    const result = await report("client");
    expect(result).toMatchObject({
      from: "2024-03-01T00:00:00.000Z",
      to: "2024-03-04T00:00:00.000Z",
      group_by: "client",
    });
    expect(
      result.rows.map((row) => ({ ...row, cost_usd: row.cost_usd === null ? null : round(row.cost_usd) })),
    ).toEqual([
      {
        key: "backend",
        requests: 2,
        prompt_tokens: 52000,
        completion_tokens: 11000,
        total_tokens: 63000,
        cost_usd: round(gpt4o(2000, 1000)),
        incomplete: 0,
        cost_estimated: 0,
      },
      {
        key: "web",
        requests: 2,
        prompt_tokens: 1100,
        completion_tokens: 520,
        total_tokens: 1620,
        cost_usd: round((mini(100, 20) ?? 0) + (gpt4o(1000, 500, 200) ?? 0)),
        incomplete: 0,
        cost_estimated: 0,
      },
      {
        key: "203.0.113.9",
        requests: 1,
        prompt_tokens: 300,
        completion_tokens: 40,
        total_tokens: 340,
        cost_usd: round(mini(300, 40)),
        incomplete: 1,
        cost_estimated: 0,
      },
      {
        key: "alice",
        requests: 2,
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
        cost_usd: null,
        incomplete: 1,
        cost_estimated: 1,
      },
    ]);
  });

  it("groups by model, naming requests without one (none)", async () => {
    const result = await report("model");
    expect(
      result.rows.map(({ key, requests, total_tokens, cost_usd, incomplete }) => ({
        key,
        requests,
        total_tokens,
        priced: cost_usd !== null,
        incomplete,
      })),
    ).toEqual([
      { key: "gpt-4o", requests: 2, total_tokens: 4500, priced: true, incomplete: 0 },
      { key: "gpt-4o-mini", requests: 2, total_tokens: 460, priced: true, incomplete: 1 },
      { key: "my-model", requests: 2, total_tokens: 60015, priced: false, incomplete: 1 },
      { key: "(none)", requests: 1, total_tokens: 0, priced: false, incomplete: 0 },
    ]);
  });

  it("groups by UTC day", async () => {
    const result = await report("day");
    expect(
      result.rows.map(({ key, requests, total_tokens, incomplete }) => ({ key, requests, total_tokens, incomplete })),
    ).toEqual([
      { key: "2024-03-02", requests: 3, total_tokens: 63340, incomplete: 1 },
      { key: "2024-03-01", requests: 2, total_tokens: 1620, incomplete: 0 },
      { key: "2024-03-03", requests: 2, total_tokens: 15, incomplete: 1 },
    ]);
  });

  it("counts a group's cost from its priced requests only, and null only when none was priced", async () => {
    const result = await report("day");
    const day2Row = result.rows.find((row) => row.key === "2024-03-02");
    expect(round(day2Row?.cost_usd ?? Number.NaN)).toBe(round((gpt4o(2000, 1000) ?? 0) + (mini(300, 40) ?? 0)));
    expect(result.rows.find((row) => row.key === "2024-03-03")?.cost_usd).toBeNull();
  });

  it("covers a half-open period: a datetime `to` leaves out a request at that instant", async () => {
    const query = parseReportQuery(
      { from: "2024-03-02T15:00:00Z", to: "2024-03-02T15:00:00.002Z", group_by: "client" },
      Date.UTC(2024, 5, 1),
    );
    const result = await usageReport(env.USAGE_DB, query);
    expect(result.rows.map((row) => [row.key, row.requests])).toEqual([["backend", 2]]);
  });

  it("answers no rows for a period without records", async () => {
    const query = parseReportQuery({ from: "2023-06-01", to: "2023-06-30" }, Date.UTC(2024, 5, 1));
    expect(await usageReport(env.USAGE_DB, query)).toEqual({
      from: "2023-06-01T00:00:00.000Z",
      to: "2023-07-01T00:00:00.000Z",
      group_by: "client",
      rows: [],
    });
  });
});

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value * 1e9) / 1e9;
}
