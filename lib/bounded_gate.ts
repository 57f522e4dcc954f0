/**
 * A concurrency limit with a bounded waiting line: at most `concurrency` holders at once, at most `queue` more
 * waiting in arrival order, and anyone beyond that refused at once instead of piling up.
 *
 * Sign-in uses it so a flood of password guesses from many addresses (each under its own per-address limit) can
 * hash at most one password at a time: PBKDF2 takes about 100 ms of a core, and unbounded parallel checks would
 * starve the proxy's hot path on a 2-core task.
 *
 * @example
 * ```ts
 * const gate = new BoundedGate({ concurrency: 1, queue: 8 });
 * const release = await gate.enter();
 * if (!release) throw new Error("busy");
 * try { await slowWork(); } finally { release(); }
 * ```
 */
export class BoundedGate {
  readonly #concurrency: number;
  readonly #queue: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(opts: { concurrency: number; queue: number }) {
    if (!(opts.concurrency >= 1) || !(opts.queue >= 0)) {
      throw new RangeError(
        `BoundedGate needs concurrency ≥ 1 and queue ≥ 0, got ${opts.concurrency} and ${opts.queue}`,
      );
    }
    this.#concurrency = opts.concurrency;
    this.#queue = opts.queue;
  }

  /**
   * Resolves to a release function once a place is free, or to null at once when the waiting line is full.
   * The release function must be called exactly once; later calls do nothing.
   */
  enter(): Promise<(() => void) | null> {
    if (this.#active < this.#concurrency) return Promise.resolve(this.#hold());
    if (this.#waiting.length >= this.#queue) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#hold())));
  }

  /** Holders now, and callers waiting. */
  get load(): { active: number; waiting: number } {
    return { active: this.#active, waiting: this.#waiting.length };
  }

  #hold(): () => void {
    this.#active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      // Hand the place straight to the next in line, so a newcomer cannot overtake it.
      const next = this.#waiting.shift();
      if (next) next();
    };
  }
}
