/**
 * A stream slot that is never released (its Worker crashed or was evicted mid-stream) is freed this
 * long after it was taken, so a client cannot be locked out for good. Longer than any stream the
 * proxy lets run unattended, so a live stream is rarely freed early.
 */
export const MAX_STREAM_MS = 30 * 60_000;

/**
 * One client's live stream slots, in memory and in the object's SQLite (a stream can outlive the
 * object's time in memory: a client with one long stream and nothing else must keep its slot).
 */
export class StreamSlots {
  readonly #sql: SqlStorage;
  /** Live slots → when each was taken; the `slots` table holds the same rows. */
  readonly #slots = new Map<string, number>();

  constructor(sql: SqlStorage) {
    this.#sql = sql;
    sql.exec("CREATE TABLE IF NOT EXISTS slots (id TEXT PRIMARY KEY, taken_at INTEGER NOT NULL)");
    for (const row of sql.exec<{ id: string; taken_at: number }>("SELECT id, taken_at FROM slots")) {
      this.#slots.set(row.id, row.taken_at);
    }
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Frees the slots taken `MAX_STREAM_MS` or more before `now`. */
  tick(now: number): void {
    const expiredBefore = now - MAX_STREAM_MS;
    let expired = false;
    for (const [slot, takenAt] of this.#slots) {
      if (takenAt <= expiredBefore) {
        this.#slots.delete(slot);
        expired = true;
      }
    }
    if (expired) this.#sql.exec("DELETE FROM slots WHERE taken_at <= ?", expiredBefore);
  }

  /** Takes a slot; returns its id. */
  take(now: number): string {
    const slot = crypto.randomUUID();
    this.#slots.set(slot, now);
    this.#sql.exec("INSERT INTO slots (id, taken_at) VALUES (?, ?)", slot, now);
    return slot;
  }

  /** Frees a slot; idempotent; unknown slots are ignored. */
  release(slot: string): void {
    if (this.#slots.delete(slot)) this.#sql.exec("DELETE FROM slots WHERE id = ?", slot);
  }
}
