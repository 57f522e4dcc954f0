/**
 * Retention: `token_usages` rows older than `PROXY_USAGE_RETENTION_DAYS` are deleted in small batches by a periodic
 * job; aggregates are kept. Each batch takes a transaction-level advisory lock, so with several replicas only one
 * deletes at a time and the others skip.
 *
 * @example
 * ```ts
 * const job = new RetentionJob({ db, log, days: 90 });
 * await job.runOnce(); // { deleted: 12000 }
 * ```
 */
import type { Db } from "../db/db.ts";
import { deleteOldUsageBatch } from "../db/usage.ts";
import type { Logger } from "../log.ts";

/** See the module documentation. */
export class RetentionJob {
  #timer: ReturnType<typeof setInterval> | null = null;
  #firstRun: ReturnType<typeof setTimeout> | null = null;
  #running: Promise<unknown> | null = null;
  #stopping = false;

  constructor(
    private readonly deps: {
      db: Db;
      log: Logger;
      days: number;
      batch?: number;
      intervalMs?: number;
      now?: () => number;
    },
  ) {}

  /** Deletes expired rows batch by batch; stops early when another replica holds the lock. */
  async runOnce(): Promise<{ deleted: number; skipped: boolean }> {
    if (this.deps.days <= 0) return { deleted: 0, skipped: true };
    const cutoff = new Date((this.deps.now ?? Date.now)() - this.deps.days * 86400_000);
    const batch = this.deps.batch ?? 5000;
    let deleted = 0;
    for (;;) {
      const n = await deleteOldUsageBatch(this.deps.db, cutoff, batch);
      if (n === null) return { deleted, skipped: deleted === 0 };
      deleted += n;
      // At shutdown the recorder's final flush matters more than the backlog, which the next start resumes.
      if (n < batch || this.#stopping) break;
      await new Promise((r) => setTimeout(r, 50)); // give the hot path's flushes room between batches
    }
    if (deleted > 0) {
      this.deps.log.info("usage retention deleted old rows", { deleted, cutoff: cutoff.toISOString() });
    }
    return { deleted, skipped: false };
  }

  /** Runs hourly (and once shortly after start). */
  start(): void {
    if (this.#timer || this.deps.days <= 0) return;
    this.#stopping = false;
    const tick = () => {
      if (this.#running) return;
      this.#running = this.runOnce().catch((e) =>
        this.deps.log.warn("usage retention failed; retried next hour", { error: (e as Error).message })
      ).finally(() => (this.#running = null));
    };
    this.#firstRun = setTimeout(tick, 60_000);
    Deno.unrefTimer(this.#firstRun);
    this.#timer = setInterval(tick, this.deps.intervalMs ?? 3600_000);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops the schedule and waits for a running pass to finish its current batch. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#firstRun) clearTimeout(this.#firstRun);
    this.#timer = this.#firstRun = null;
    await this.#running;
  }
}
