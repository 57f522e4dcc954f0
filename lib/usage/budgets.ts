/**
 * Monthly Bedrock budgets: a user's `monthly_budget_usd` caps Bedrock spend in the calendar month of
 * `PROXY_TIMEZONE`. The check reads a short-lived per-user cache, not the database per request; committed usage is
 * added to the cache as it is written, so the cached figure does not lag by the cache lifetime.
 *
 * @example
 * ```ts
 * const guard = new BudgetGuard({ db, timeZone: "Asia/Seoul", now: Date.now });
 * const verdict = await guard.check(userId, 50);
 * if (!verdict.ok) console.log(verdict.message);
 * ```
 */
import type { Db } from "../db/db.ts";
import { bedrockSpendSince, type UsageRecord } from "../db/usage.ts";
import { monthWindow } from "./budget_period.ts";
import type { Logger } from "../log.ts";

/** A budget verdict. */
export type BudgetVerdict =
  | { ok: true }
  | { ok: false; spendUsd: number; budgetUsd: number; resetsAt: Date; message: string };

interface Cached {
  spend: number;
  monthStart: number;
  fetchedAt: number;
}

/** See the module documentation. */
export class BudgetGuard {
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<Cached>>();

  constructor(
    private readonly deps: { db: Db; timeZone: string; now?: () => number; ttlMs?: number; log?: Logger },
  ) {}

  /**
   * Whether `userId` may spend on Bedrock; `budgetUsd` null means no cap. With the database down it judges by
   * this month's last known spend, and fails open only when there is none.
   */
  async check(userId: string, budgetUsd: number | null): Promise<BudgetVerdict> {
    if (budgetUsd === null) return { ok: true };
    const now = this.#now();
    const window = monthWindow(new Date(now), this.deps.timeZone);
    let spend: number;
    try {
      spend = (await this.#spend(userId, window.start.getTime(), now)).spend;
    } catch (e) {
      // Database down: this month's last known figure, however old, beats none.
      const known = this.#cache.get(userId);
      if (known && known.monthStart === window.start.getTime()) spend = known.spend;
      else {
        this.deps.log?.warn("budget check skipped: spend unavailable", {
          user_id: userId,
          error: (e as Error).message,
        });
        return { ok: true };
      }
    }
    if (spend < budgetUsd) return { ok: true };
    const resetsAt = window.end;
    return {
      ok: false,
      spendUsd: spend,
      budgetUsd,
      resetsAt,
      message: `monthly Bedrock budget reached: spent $${spend.toFixed(2)} of $${budgetUsd.toFixed(2)}; ` +
        `resets ${resetsAt.toISOString()} (${this.deps.timeZone} month start)`,
    };
  }

  /** Adds committed Bedrock cost to cached spend (called by the recorder after each flush). */
  onCommitted(records: UsageRecord[]): void {
    for (const r of records) {
      if (r.provider !== "bedrock" || !r.costUsd) continue;
      const c = this.#cache.get(r.userId);
      if (c && new Date(r.createdAt).getTime() >= c.monthStart) c.spend += r.costUsd;
    }
  }

  /** Drops a user's cached spend (budget changed). */
  forget(userId: string): void {
    this.#cache.delete(userId);
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }

  #spend(userId: string, monthStart: number, now: number): Promise<Cached> {
    const c = this.#cache.get(userId);
    if (c && c.monthStart === monthStart && now - c.fetchedAt < (this.deps.ttlMs ?? 30_000)) {
      return Promise.resolve(c);
    }
    let p = this.#inflight.get(userId);
    if (!p) {
      p = bedrockSpendSince(this.deps.db, userId, new Date(monthStart)).then((spend) => {
        const fresh = { spend, monthStart, fetchedAt: this.#now() };
        this.#cache.set(userId, fresh);
        return fresh;
      }).finally(() => this.#inflight.delete(userId));
      this.#inflight.set(userId, p);
    }
    return p;
  }
}
