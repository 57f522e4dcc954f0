/**
 * A sliding-window failure counter for brute-force protection (admin sign-in per address and per user name,
 * access-key guessing per address). Memory is bounded: at most `maxKeys` subjects are tracked, oldest evicted,
 * and a subject whose failures have all left the window is dropped by the next attempt of any subject, so keys
 * that are never seen again (made-up user names, passing addresses) do not stay until the cap.
 *
 * @example
 * ```ts
 * const t = new FailureThrottle({ limit: 5, windowMs: 60_000, now: Date.now });
 * t.fail("ip:10.0.0.1");
 * t.retryAfterSeconds("ip:10.0.0.1"); // 0 until the 5th failure within a minute
 * ```
 */
export class FailureThrottle {
  readonly #failures = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  /** When each throttled subject last made an attempt at the limit's pace (see `pace`). */
  readonly #paced = new Map<string, number>();

  constructor(opts: { limit: number; windowMs: number; now?: () => number; maxKeys?: number }) {
    this.#limit = opts.limit;
    this.#windowMs = opts.windowMs;
    this.#now = opts.now ?? Date.now;
    this.#maxKeys = opts.maxKeys ?? 100_000;
  }

  /**
   * Before an attempt by `subject`: 0 when it may go ahead, else the seconds until it may. Past the limit the
   * subject is not shut out but slowed to the limit's own pace, one attempt per window ÷ limit (2 s for 30 a
   * minute), so an attempt that would succeed, sharing a throttled subject with failing ones, gets through after
   * a short wait. Failures are still recorded with {@link fail}, once known.
   */
  pace(subject: string): number {
    if (this.retryAfterSeconds(subject) === 0) return 0;
    const now = this.#now();
    const interval = this.#windowMs / this.#limit;
    this.#sweep(now);
    const last = this.#paced.get(subject);
    if (last !== undefined && now - last < interval) {
      return Math.max(1, Math.ceil((last + interval - now) / 1000));
    }
    this.#paced.delete(subject); // re-insert: Map order doubles as recency for eviction
    this.#paced.set(subject, now);
    if (this.#paced.size > this.#maxKeys) {
      const oldest = this.#paced.keys().next().value;
      if (oldest !== undefined) this.#paced.delete(oldest);
    }
    return 0;
  }

  /**
   * Records a turn `subject` took elsewhere (another replica let an attempt through at the pace): the next turn
   * here comes one interval after the later of this one and the last, so turns taken on several replicas at
   * once add up rather than each replica keeping its own pace. Only ever one interval per turn: an address is
   * slowed, never shut out.
   */
  takeTurn(subject: string): void {
    const now = this.#now();
    const interval = this.#windowMs / this.#limit;
    this.#sweep(now);
    const last = this.#paced.get(subject);
    this.#paced.delete(subject); // re-insert: Map order doubles as recency for eviction
    this.#paced.set(subject, last === undefined ? now : Math.max(now, last + interval));
    if (this.#paced.size > this.#maxKeys) {
      const oldest = this.#paced.keys().next().value;
      if (oldest !== undefined) this.#paced.delete(oldest);
    }
  }

  /** Records one failure for `subject`. */
  fail(subject: string): void {
    const now = this.#now();
    this.#sweep(now);
    const list = this.#recent(subject, now) ?? [];
    list.push(now);
    this.#failures.delete(subject); // re-insert: Map order doubles as recency for eviction
    this.#failures.set(subject, list);
    if (this.#failures.size > this.#maxKeys) {
      const oldest = this.#failures.keys().next().value;
      if (oldest !== undefined) this.#failures.delete(oldest);
    }
  }

  /** Seconds until `subject` may try again; 0 when it is not throttled. */
  retryAfterSeconds(subject: string): number {
    const now = this.#now();
    const list = this.#recent(subject, now);
    if (!list || list.length < this.#limit) return 0;
    const unblockAt = list[list.length - this.#limit] + this.#windowMs;
    return Math.max(1, Math.ceil((unblockAt - now) / 1000));
  }

  /** Whether `subject` has any failure within the window. */
  hasFailed(subject: string): boolean {
    return this.#recent(subject, this.#now()) !== undefined;
  }

  /** Takes back the latest failure of `subject` (one recorded for an attempt that was then never made). */
  forgive(subject: string): void {
    const list = this.#failures.get(subject);
    if (!list) return;
    list.pop();
    if (list.length === 0) this.#failures.delete(subject);
  }

  /** How many subjects are held (with failures in the window, or paced); what the memory bound is about. */
  get size(): number {
    return this.#failures.size + this.#paced.size;
  }

  /** Forgets `subject` (after a success). */
  clear(subject: string): void {
    this.#failures.delete(subject);
    this.#paced.delete(subject);
  }

  /**
   * Drops subjects that no longer count: failures all older than the window, a paced turn older than the pace.
   * Both maps are in order of last attempt (every write re-inserts), so the stale ones are at the front and the
   * walk stops at the first live one: amortised O(1) per attempt. An entry that `forgive` made older than its
   * place says is only dropped later, never too early.
   */
  #sweep(now: number): void {
    const cutoff = now - this.#windowMs;
    for (const [subject, list] of this.#failures) {
      if (list.length > 0 && list[list.length - 1] > cutoff) break;
      this.#failures.delete(subject);
    }
    const paceCutoff = now - this.#windowMs / this.#limit;
    for (const [subject, last] of this.#paced) {
      if (last > paceCutoff) break;
      this.#paced.delete(subject);
    }
  }

  #recent(subject: string, now: number): number[] | undefined {
    const list = this.#failures.get(subject);
    if (!list) return undefined;
    const cutoff = now - this.#windowMs;
    let drop = 0;
    while (drop < list.length && list[drop] <= cutoff) drop++;
    if (drop > 0) list.splice(0, drop);
    if (list.length === 0) {
      this.#failures.delete(subject);
      return undefined;
    }
    return list;
  }
}
