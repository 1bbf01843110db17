import type { Env } from "../env";
import { type UsageRecord, writeUsage } from "./ledger";

/** How long a batch whose write failed waits before the queue delivers it again. */
const RETRY_DELAY_SECONDS = 5;

/** Records sent to the queue together, at most (a `sendBatch` takes up to 100 messages). */
const SEND_BATCH = 50;
/** How long a record waits in the isolate for others to go with it, at most, in milliseconds. */
const SEND_DELAY_MS = 100;

/** Records of this isolate's requests waiting to go to the queue together: plain data, shared by requests. */
let pending: UsageRecord[] = [];

/**
 * Records one request in the ledger, from `waitUntil`: through the usage queue (`USAGE_QUEUE`),
 * gathered in the isolate and sent up to `SEND_BATCH` at a time (one call for many requests); the
 * queue's consumer writes them in batches. The request whose record starts a batch sends it after
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
    await queue.sendBatch(records.map((body) => ({ body, contentType: "json" as const })));
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
 * The usage queue's consumer: writes a whole batch of records with one statement. A failed write
 * sends the batch back to the queue, to be delivered again after `RETRY_DELAY_SECONDS`; records
 * already written are skipped then (idempotent on their `recordId`), so a retry never duplicates.
 *
 * @example
 * export default { fetch, queue: (batch, env) => consumeUsage(batch, env) };
 */
export async function consumeUsage(batch: MessageBatch<UsageRecord>, env: Env): Promise<void> {
  try {
    await writeUsage(
      env.USAGE_DB,
      batch.messages.map((message) => message.body),
    );
    batch.ackAll();
  } catch (error) {
    console.error(
      JSON.stringify({
        level: "error",
        msg: "usage ledger batch write failed; the queue will deliver it again",
        records: batch.messages.length,
        error: String(error),
      }),
    );
    batch.retryAll({ delaySeconds: RETRY_DELAY_SECONDS });
  }
}
