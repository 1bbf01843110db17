import { createExecutionContext, createMessageBatch, env, getQueueResult } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../index";
import { call, mockUpstream, openaiJson, postJson, text } from "../testing";
import type { UsageRecord } from "./ledger";
import { recordUsage } from "./ledger-queue";

function record(i: number, day: number): UsageRecord {
  return {
    ts: Date.UTC(2024, 5, day) + i,
    requestId: `req_q_${day}_${i}`,
    recordId: `rec_q_${day}_${i}`,
    client: "web",
    clientKind: "key",
    route: "/v1/chat/completions",
    model: "gpt-4o-mini",
    status: 200,
    promptTokens: 10,
    completionTokens: 5,
    totalTokens: 15,
    cachedTokens: 0,
    reasoningTokens: 0,
    costUsd: 0.000004,
    costEstimated: false,
    basis: "reported",
    durationMs: 100,
    ttftMs: 50,
    incomplete: false,
  };
}

async function rowsOn(day: number): Promise<number> {
  const key = `2024-06-${String(day).padStart(2, "0")}`;
  return (
    (await env.USAGE_DB.prepare("SELECT COUNT(*) AS n FROM usage WHERE day = ?").bind(key).first<{ n: number }>())?.n ??
    0
  );
}

/** Delivers `records` to the consumer, as messages of `perMessage` records each (1: one record per message, as earlier versions sent them). */
async function deliver(records: UsageRecord[], db: D1Database = env.USAGE_DB, perMessage = 1) {
  const bodies: (UsageRecord | UsageRecord[])[] = [];
  for (let i = 0; i < records.length; i += perMessage) {
    bodies.push(perMessage === 1 ? (records[i] as UsageRecord) : records.slice(i, i + perMessage));
  }
  const batch = createMessageBatch<UsageRecord | UsageRecord[]>(
    "openai-workers-proxy-usage",
    bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue?.(
    batch,
    { ...env, USAGE_DB: db } as unknown as Parameters<NonNullable<typeof worker.queue>>[1],
    ctx,
  );
  return getQueueResult(batch, ctx);
}

describe("the usage queue's consumer", () => {
  it("writes a whole batch with one statement, and acknowledges it", async () => {
    const records = Array.from({ length: 100 }, (_, i) => record(i, 1));
    const statements: string[] = [];
    const counting = new Proxy(env.USAGE_DB, {
      get(target, name) {
        if (name === "prepare") {
          return (sql: string) => {
            statements.push(sql);
            return target.prepare(sql);
          };
        }
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const result = await deliver(records, counting);
    expect(result).toMatchObject({ explicitAcks: [], retryBatch: { retry: false } });
    expect(result.ackAll).toBe(true);
    expect(statements).toHaveLength(1);
    expect(await rowsOn(1)).toBe(100);
  });

  it("writes messages that carry many records, one statement per thousand records", async () => {
    const records = Array.from({ length: 2_500 }, (_, i) => record(i, 5));
    const statements: string[] = [];
    const counting = {
      prepare: (sql: string) => {
        statements.push(sql);
        return env.USAGE_DB.prepare(sql);
      },
    };
    const result = await deliver(records, counting as unknown as D1Database, 50);
    expect(result.ackAll).toBe(true);
    expect(statements).toHaveLength(3);
    expect(await rowsOn(5)).toBe(2_500);
  });

  it("sends a batch back when the write fails, and never duplicates a record delivered again", async () => {
    const records = Array.from({ length: 30 }, (_, i) => record(i, 2));
    const failing = { prepare: () => ({ bind: () => ({ run: () => Promise.reject(new Error("D1 is down")) }) }) };
    const failed = await deliver(records, failing as unknown as D1Database);
    expect(failed.retryBatch).toMatchObject({ retry: true });
    expect(failed.ackAll).toBe(false);
    expect(await rowsOn(2)).toBe(0);
    // Delivered again, twice (a retry after a write that did land): each record once.
    await deliver(records);
    await deliver(records);
    expect(await rowsOn(2)).toBe(30);
  });
});

describe("recordUsage", () => {
  it("sends a record to the queue when it is bound", async () => {
    const calls: { body: unknown }[][] = [];
    const queue = { sendBatch: async (messages: { body: unknown }[]) => void calls.push(messages) };
    // Records of several requests of the isolate go together, in one call.
    await Promise.all([0, 1, 2].map((i) => recordUsage({ ...env, USAGE_QUEUE: queue } as never, record(i, 3))));
    expect(calls).toHaveLength(1);
    // One message carrying the three records.
    expect(calls[0]?.map((message) => message.body)).toEqual([[record(0, 3), record(1, 3), record(2, 3)]]);
    expect(await rowsOn(3)).toBe(0);
  });

  it("splits what it sends into messages Queues accepts (under 128 KB each)", async () => {
    const calls: { body: UsageRecord[] }[][] = [];
    const queue = { sendBatch: async (messages: { body: UsageRecord[] }[]) => void calls.push(messages) };
    const big = (i: number) => ({ ...record(i, 6), model: `m-${"x".repeat(3_000)}` });
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => recordUsage({ ...env, USAGE_QUEUE: queue } as never, big(i))),
    );
    const messages = calls.flat();
    expect(messages.length).toBeGreaterThan(1);
    for (const message of messages) expect(JSON.stringify(message.body).length).toBeLessThan(64_000);
    expect(messages.flatMap((message) => message.body).map((r) => r.recordId)).toEqual(
      Array.from({ length: 50 }, (_, i) => `rec_q_6_${i}`),
    );
  });

  it("writes the record directly when the queue refuses it or is not bound: nothing is lost", async () => {
    const refusing = { sendBatch: () => Promise.reject(new Error("queue unavailable")) };
    await recordUsage({ ...env, USAGE_QUEUE: refusing } as never, record(0, 4));
    await recordUsage({ ...env, USAGE_QUEUE: undefined } as never, record(1, 4));
    expect(await rowsOn(4)).toBe(2);
  });

  it("is what a request's accounting uses, with the proxy's own id as the record's", async () => {
    mockUpstream(() => openaiJson({ usage: { prompt_tokens: 3, completion_tokens: 2 } }));
    const sent: UsageRecord[] = [];
    const queue = {
      sendBatch: async (messages: { body: UsageRecord[] }[]) => void sent.push(...messages.flatMap((m) => m.body)),
    };
    const { response, settled } = await call(postJson("/v1/chat/completions", { model: "gpt-4o-mini", messages: [] }), {
      USAGE_QUEUE: queue as unknown as Queue,
    });
    await text(response);
    await settled();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ promptTokens: 3, completionTokens: 2, recordId: expect.stringMatching(/^req_/) });
  });
});
