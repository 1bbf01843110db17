import type { Env } from "../env";
import { type UsageRecord, writeUsage } from "./ledger";

/** How long a batch whose write failed waits before the queue delivers it again. */
const RETRY_DELAY_SECONDS = 5;

/**
 * Records one request in the ledger, from `waitUntil`: through the usage queue (`USAGE_QUEUE`),
 * whose consumer writes records in batches; written directly when the queue is not bound or
 * refuses the message, so that a record is never lost while the proxy runs.
 *
 * @throws Error when the direct write fails too (the caller logs it).
 * @example
 * ctx.waitUntil(recordUsage(env, record).catch(logFailure));
 */
export async function recordUsage(env: Env, record: UsageRecord): Promise<void> {
  const queue = (env as Partial<Env>).USAGE_QUEUE;
  if (queue !== undefined) {
    try {
      await queue.send(record, { contentType: "json" });
      return;
    } catch (error) {
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: "usage queue refused a record; writing it directly",
          error: String(error),
        }),
      );
    }
  }
  await writeUsage(env.USAGE_DB, record);
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
