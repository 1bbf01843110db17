import type { Env } from "../env";
import { type UsageRecord, writeUsage } from "./ledger";

/** How long a batch whose write failed waits before the queue delivers it again. */
const RETRY_DELAY_SECONDS = 5;

/** Records gathered in the isolate before they are sent, at most. */
const SEND_BATCH = 50;
/**
 * A queue message carries many records (an array), up to this many bytes of JSON: Queues bills
 * and limits by message (128 KB each; each 64 KB is one operation, developers.cloudflare.com/queues/platform/limits
 * and pricing, read 2026-11-30), and its local broker keeps one timer per message.
 */
const MESSAGE_BYTES = 60_000;
/** Records written by one D1 statement, at most: D1 binds a string of up to 2 MB (limits, read 2026-11-30). */
const WRITE_BATCH = 1_000;
/** How long a record waits in the isolate for others to go with it, at most, in milliseconds. */
const SEND_DELAY_MS = 100;

/** Records of this isolate's requests waiting to go to the queue together: plain data, shared by requests. */
let pending: UsageRecord[] = [];

/**
 * Records one request in the ledger, from `waitUntil`: through the usage queue (`USAGE_QUEUE`),
 * gathered in the isolate and sent up to `SEND_BATCH` at a time, in one message (one call and one
 * message for many requests); the queue's consumer writes them in batches. The request whose record starts a batch sends it after
 * `SEND_DELAY_MS` (or the one that fills it, at once), in its own `waitUntil`: no request ever
 * waits on a promise of another (the runtime cancels those), and a record in a batch always has a
 * running request that will send it. Written directly when the queue is not bound or refuses them,
 * so that a record is never lost while the proxy runs.
 *
 * @throws Error when the direct write fails too (the caller logs it).
 * @example
 * ctx.waitUntil(recordUsage(env, record).catch(logFailure));
 */
export async function recordUsage(env: Env, record: UsageRecord): Promise<void> {
  const queue = (env as Partial<Env>).USAGE_QUEUE;
  if (queue === undefined) return writeUsage(env.USAGE_DB, record);
  pending.push(record);
  if (pending.length >= SEND_BATCH) return flush(env, queue);
  if (pending.length > 1) return; // the request that started this batch sends it
  await new Promise((wake) => setTimeout(wake, SEND_DELAY_MS));
  await flush(env, queue);
}

/** Sends what is pending to the queue in one call; on refusal writes it to the ledger directly. */
async function flush(env: Env, queue: Queue): Promise<void> {
  const records = pending;
  pending = [];
  if (records.length === 0) return;
  try {
    await queue.sendBatch(messagesOf(records).map((body) => ({ body, contentType: "json" as const })));
  } catch (error) {
    console.warn(
      JSON.stringify({
        level: "warn",
        msg: "usage queue refused records; writing them directly",
        records: records.length,
        error: String(error),
      }),
    );
    await writeUsage(env.USAGE_DB, records);
  }
}

/**
 * Records split into queue messages of at most `MESSAGE_BYTES` of JSON each (a record larger than
 * that goes alone), by an upper bound of each record's size (`jsonBytesAtMost`): usually one
 * message, with nothing serialised twice.
 */
function messagesOf(records: readonly UsageRecord[]): UsageRecord[][] {
  const messages: UsageRecord[][] = [];
  let current: UsageRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = jsonBytesAtMost(record);
    if (current.length > 0 && bytes + size > MESSAGE_BYTES) {
      messages.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0) messages.push(current);
  return messages;
}

/**
 * At least as many bytes as a record's JSON takes: its names, numbers and punctuation fit in 600
 * bytes, and each character of its strings takes at most 6 (`\u0000`; a character outside the
 * BMP, 12 bytes for its 2 UTF-16 units, the same).
 */
function jsonBytesAtMost(record: UsageRecord): number {
  let chars = 0;
  for (const value of Object.values(record)) if (typeof value === "string") chars += value.length;
  return 600 + 6 * chars;
}

/**
 * The usage queue's consumer: writes a whole batch of messages, each carrying many records (or
 * one, as messages sent by earlier versions did), with one statement per `WRITE_BATCH` records. A failed write
 * sends the batch back to the queue, to be delivered again after `RETRY_DELAY_SECONDS`; records
 * already written are skipped then (idempotent on their `recordId`), so a retry never duplicates.
 *
 * @example
 * export default { fetch, queue: (batch, env) => consumeUsage(batch, env) };
 */
export async function consumeUsage(batch: MessageBatch<UsageRecord | UsageRecord[]>, env: Env): Promise<void> {
  const records = batch.messages.flatMap((message) => message.body);
  try {
    for (let i = 0; i < records.length; i += WRITE_BATCH) {
      await writeUsage(env.USAGE_DB, records.slice(i, i + WRITE_BATCH));
    }
    batch.ackAll();
  } catch (error) {
    console.error(
      JSON.stringify({
        level: "error",
        msg: "usage ledger batch write failed; the queue will deliver it again",
        records: records.length,
        error: String(error),
      }),
    );
    batch.retryAll({ delaySeconds: RETRY_DELAY_SECONDS });
  }
}
