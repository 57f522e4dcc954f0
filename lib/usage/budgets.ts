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
import { within } from "../within.ts";

/** A budget verdict. */
export type BudgetVerdict =
  | { ok: true }
  | { ok: false; spendUsd: number; budgetUsd: number; resetsAt: Date; message: string };

interface Cached {
  /** Spend in micro-dollars: sums of floats drift (0.7 + 0.1 < 0.8), and the database sums numerics exactly. */
  spend: number;
  monthStart: number;
  fetchedAt: number;
  /** No refresh before this (set when one failed: an outage must not cost every request a database wait). */
  retryAt: number;
}

/** After a failed refresh, the database is asked again no sooner than this. */
const RETRY_AFTER_FAILURE_MS = 5_000;
/** How long a check waits for a user's first spend figure of the month. */
const FIRST_READ_WAIT_MS = 1_000;

const micros = (usd: number) => Math.round(usd * 1e6);

/** See the module documentation. */
export class BudgetGuard {
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<Cached>>();
  /** Costs committed while a user's refresh is in flight: its snapshot may predate them. */
  readonly #addedDuringFetch = new Map<string, number>();
  /** Users whose spend could not be read at all: the database is not asked again until then. */
  readonly #unknownUntil = new Map<string, number>();

  constructor(
    private readonly deps: { db: Db; timeZone: string; now?: () => number; ttlMs?: number; log?: Logger },
  ) {}

  /**
   * Whether `userId` may spend on Bedrock; `budgetUsd` null means no cap. A figure known for this month is
   * answered at once and refreshed in the background once older than the cache lifetime, so only a user's first
   * check in a month waits for the database. With the database down it judges by this month's last known spend,
   * however old, and fails open only when there is none.
   */
  async check(userId: string, budgetUsd: number | null): Promise<BudgetVerdict> {
    if (budgetUsd === null) return { ok: true };
    const now = this.#now();
    const window = monthWindow(new Date(now), this.deps.timeZone);
    const monthStart = window.start.getTime();
    let spend: number;
    const known = this.#cache.get(userId);
    if (known && known.monthStart === monthStart) {
      if (now - known.fetchedAt >= (this.deps.ttlMs ?? 30_000) && now >= known.retryAt) {
        this.#refresh(userId, monthStart).catch(() => {}); // logged there; the known figure stands meanwhile
      }
      spend = known.spend;
    } else {
      if ((this.#unknownUntil.get(userId) ?? 0) > now) return { ok: true };
      try {
        // Bounded: a stalled database (a failover, a partition) must not hold the request for as long as the
        // connection does. The read goes on and fills the cache; meanwhile the user is let through, as with
        // the database down.
        spend =
          (await within(FIRST_READ_WAIT_MS, this.#refresh(userId, monthStart), "budget spend read")).spend;
      } catch {
        this.#unknownUntil.set(userId, now + RETRY_AFTER_FAILURE_MS);
        return { ok: true };
      }
    }
    if (spend < micros(budgetUsd)) return { ok: true };
    const resetsAt = window.end;
    const spendUsd = spend / 1e6;
    return {
      ok: false,
      spendUsd,
      budgetUsd,
      resetsAt,
      message: `monthly Bedrock budget reached: spent $${spendUsd.toFixed(2)} of $${budgetUsd.toFixed(2)}; ` +
        `resets ${resetsAt.toISOString()} (${this.deps.timeZone} month start)`,
    };
  }

  /** Adds committed Bedrock cost to cached spend (called by the recorder after each flush). */
  onCommitted(records: UsageRecord[]): void {
    for (const r of records) {
      if (r.provider !== "bedrock" || !r.costUsd) continue;
      const cost = micros(r.costUsd);
      const c = this.#cache.get(r.userId);
      if (c && new Date(r.createdAt).getTime() >= c.monthStart) c.spend += cost;
      // A refresh in flight may have read the spend before this commit and would overwrite the sum above with
      // it: added to its figure too. Counted twice when its snapshot came after, until the next refresh, which
      // errs towards refusing, never towards spending past the budget.
      const pending = this.#addedDuringFetch.get(r.userId);
      if (pending !== undefined) this.#addedDuringFetch.set(r.userId, pending + cost);
    }
  }

  /** Drops a user's cached spend (budget changed). */
  forget(userId: string): void {
    this.#cache.delete(userId);
    this.#unknownUntil.delete(userId);
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Reads this month's spend into the cache; one query per user at a time. */
  #refresh(userId: string, monthStart: number): Promise<Cached> {
    let p = this.#inflight.get(userId);
    if (p) return p;
    this.#addedDuringFetch.set(userId, 0);
    p = bedrockSpendSince(this.deps.db, userId, new Date(monthStart)).then((spendUsd) => {
      const fresh: Cached = {
        spend: micros(spendUsd) + (this.#addedDuringFetch.get(userId) ?? 0),
        monthStart,
        fetchedAt: this.#now(),
        retryAt: 0,
      };
      this.#cache.set(userId, fresh);
      this.#unknownUntil.delete(userId);
      return fresh;
    }, (e) => {
      const known = this.#cache.get(userId);
      if (known) known.retryAt = this.#now() + RETRY_AFTER_FAILURE_MS;
      this.deps.log?.warn("budget spend unavailable; judged by the last known figure, if any", {
        user_id: userId,
        error: (e as Error).message,
      });
      throw e;
    }).finally(() => {
      this.#inflight.delete(userId);
      this.#addedDuringFetch.delete(userId);
    });
    this.#inflight.set(userId, p);
    return p;
  }
}
