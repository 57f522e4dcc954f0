/**
 * Per-access-key circuit breakers in front of the plan upstream.
 *
 * A key whose plan upstream keeps failing goes straight to Bedrock for a while instead of paying a failed
 * round trip on every request; one probe request then tests whether the plan works again.
 *
 * @module
 */

/** `closed`: use the plan. `open`: use Bedrock until `reopensAt`. `half_open`: one probe tests the plan. */
export type CircuitState = "closed" | "open" | "half_open";

/** A state change, for logging and for broadcasting to other replicas. */
export interface TransitionEvent {
  /** The access key the breaker belongs to, as passed to the registry. */
  key: string;
  /** State before the change. */
  from: CircuitState;
  /** State after the change; equal to `from` when an open circuit's reopen time moved. */
  to: CircuitState;
  /** Why, for logs: e.g. "3 failures within 60000 ms", "probe failed", the reason given to openUntil. */
  reason: string;
  /** When an `open` circuit lets a probe through; null for other states. */
  reopensAt: number | null;
  /** Set (false) only when a half-open probe was released without a verdict: others may probe. */
  probing?: false;
}

/** Settings for {@link CircuitBreakers}; times in milliseconds. */
export interface BreakerOptions {
  /** Counted failures within `failureWindowMs` that open a closed circuit (`PROXY_CIRCUIT_FAILURE_THRESHOLD`). */
  failureThreshold: number;
  /** Sliding window for counting failures (`PROXY_CIRCUIT_FAILURE_WINDOW`, in ms here). */
  failureWindowMs: number;
  /** How long a circuit stays open before a probe (`PROXY_CIRCUIT_RESET_TIMEOUT`, in ms here). */
  resetTimeoutMs: number;
  /** Clock in epoch ms; injected so tests control time. */
  now: () => number;
  /** Called on every state change; not for {@link CircuitBreakers.applyRemote}. Must not throw. */
  onTransition?: (e: TransitionEvent) => void;
  /** A probe outstanding longer than this is considered lost and another is let through. Default 10 minutes. */
  probeTimeoutMs?: number;
}

/** The routing decision for one request. */
export interface Acquired {
  /** Where to send the request. */
  readonly route: "plan" | "bedrock";
  /** True when this request is the half-open probe; report its outcome with `probe: true`. */
  readonly probe: boolean;
}

/** A read-only view of one key's breaker. */
export interface BreakerSnapshot {
  /** The state as stored; an open circuit past its reopen time turns half-open on the next acquire. */
  state: CircuitState;
  /** Closed: failures within the window. Open/half-open: the failures that opened it. */
  failures: number;
  /** When the circuit last opened (kept while half-open); null when closed. */
  openedAt: number | null;
  /** When an open circuit lets a probe through; null unless open. */
  reopensAt: number | null;
}

// Shared, frozen results: acquire runs on every proxied request and should not allocate.
const PLAN: Acquired = Object.freeze({ route: "plan", probe: false });
const PROBE: Acquired = Object.freeze({ route: "plan", probe: true });
const BEDROCK: Acquired = Object.freeze({ route: "bedrock", probe: false });

const DEFAULT_PROBE_TIMEOUT_MS = 10 * 60_000;

interface Breaker {
  state: CircuitState;
  /** Failure times in ascending order; at most `failureThreshold` long. */
  failures: number[];
  openedAt: number | null;
  reopensAt: number | null;
  /** When the outstanding half-open probe was handed out; null when none is outstanding. */
  probeAt: number | null;
}

function positive(name: string, n: number, integer = false): void {
  if (typeof n !== "number" || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new RangeError(
      `CircuitBreakers: ${name} must be a positive ${integer ? "integer" : "number"}, got ${n}`,
    );
  }
}

/**
 * A registry of circuit breakers, one per access key, created on demand.
 *
 * Only keys that have failed recently or are open use memory: a closed key with no recent failures has no
 * entry, so millions of healthy keys cost nothing. Late outcomes of requests that were sent before the
 * circuit opened (`probe: false` while open or half-open) are ignored: they say nothing about the plan now.
 *
 * @example
 * ```ts
 * const breakers = new CircuitBreakers({
 *   failureThreshold: 3, failureWindowMs: 60_000, resetTimeoutMs: 1_800_000, now: Date.now,
 * });
 * const { route, probe } = breakers.acquire(keyId);
 * if (route === "plan") {
 *   const res = await callPlan();
 *   if (res.ok) breakers.recordSuccess(keyId, probe);
 *   else if (res.status === 429 || res.status >= 500) breakers.recordFailure(keyId, probe);
 *   else if (probe) breakers.releaseProbe(keyId);
 * }
 * ```
 */
export class CircuitBreakers {
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #resetMs: number;
  readonly #probeTimeoutMs: number;
  readonly #now: () => number;
  readonly #onTransition: ((e: TransitionEvent) => void) | undefined;
  readonly #breakers = new Map<string, Breaker>();
  #lastSweep: number;

  /** Creates an empty registry; throws RangeError when a threshold or duration is not a positive number. */
  constructor(opts: BreakerOptions) {
    positive("failureThreshold", opts.failureThreshold, true);
    positive("failureWindowMs", opts.failureWindowMs);
    positive("resetTimeoutMs", opts.resetTimeoutMs);
    const probeTimeoutMs = opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    positive("probeTimeoutMs", probeTimeoutMs);
    this.#threshold = opts.failureThreshold;
    this.#windowMs = opts.failureWindowMs;
    this.#resetMs = opts.resetTimeoutMs;
    this.#probeTimeoutMs = probeTimeoutMs;
    this.#now = opts.now;
    this.#onTransition = opts.onTransition;
    this.#lastSweep = opts.now();
  }

  /** Number of keys holding state (failing, open or half-open); for tests and metrics. */
  get size(): number {
    return this.#breakers.size;
  }

  /**
   * Decides where a request goes before calling the plan upstream: `plan` when closed, or when this caller
   * won the single half-open probe (`probe: true`); `bedrock` when open, or when the probe is taken.
   *
   * @example
   * ```ts
   * const { route, probe } = breakers.acquire("ak_123");
   * ```
   */
  acquire(key: string): Acquired {
    const b = this.#breakers.get(key);
    if (b === undefined) return PLAN;
    const now = this.#now();
    switch (b.state) {
      case "closed":
        // Drop a key whose failures have all aged out, so keys that failed once do not stay forever.
        if (!(b.failures[b.failures.length - 1] >= now - this.#windowMs)) this.#breakers.delete(key);
        return PLAN;
      case "open":
        if (b.reopensAt !== null && now < b.reopensAt) return BEDROCK;
        b.probeAt = now;
        this.#move(key, b, "half_open", "reset timeout elapsed");
        return PROBE;
      case "half_open":
        // No probe outstanding (released), or the outstanding one is presumed lost: this caller probes.
        if (b.probeAt === null || now - b.probeAt >= this.#probeTimeoutMs) {
          b.probeAt = now;
          return PROBE;
        }
        return BEDROCK;
    }
  }

  /**
   * Records a successful plan response. Half-open probe: closes. Closed: nothing; failures count within the
   * window whatever succeeded between them (intermittent 529s open the circuit as steady ones do).
   *
   * @example
   * ```ts
   * breakers.recordSuccess("ak_123", probe);
   * ```
   */
  recordSuccess(key: string, probe: boolean): void {
    const b = this.#breakers.get(key);
    if (b === undefined) return;
    if (b.state === "half_open" && probe) {
      this.#breakers.delete(key);
      this.#emit(key, "half_open", "closed", "probe succeeded", null);
    }
  }

  /**
   * Records a counted failure (rate limit, overload, 5xx, unreachable). Closed: opens after
   * `failureThreshold` failures within `failureWindowMs`. Half-open probe: reopens for `resetTimeoutMs`.
   *
   * @example
   * ```ts
   * breakers.recordFailure("ak_123", probe);
   * ```
   */
  recordFailure(key: string, probe: boolean): void {
    const now = this.#now();
    this.#maybeSweep(now);
    let b = this.#breakers.get(key);
    if (b === undefined) {
      b = { state: "closed", failures: [], openedAt: null, reopensAt: null, probeAt: null };
      this.#breakers.set(key, b);
    }
    if (b.state === "half_open") {
      if (!probe) return;
      b.openedAt = now;
      b.reopensAt = now + this.#resetMs;
      b.probeAt = null;
      this.#move(key, b, "open", "probe failed");
      return;
    }
    if (b.state === "open") return;
    const f = b.failures;
    const cutoff = now - this.#windowMs;
    let stale = 0;
    while (stale < f.length && f[stale] < cutoff) stale++;
    if (stale > 0) f.splice(0, stale);
    f.push(now);
    if (f.length >= this.#threshold) {
      b.openedAt = now;
      b.reopensAt = now + this.#resetMs;
      this.#move(key, b, "open", `${f.length} failures within ${this.#windowMs} ms`);
    }
  }

  /**
   * Opens the circuit now until `untilMs`, e.g. when the plan upstream says its usage limit is reached until
   * a reset time. Replaces any earlier reopen time, and drops an outstanding probe.
   *
   * @example
   * ```ts
   * breakers.openUntil("ak_123", Date.parse(resetHeader), "plan usage limit reached");
   * ```
   */
  openUntil(key: string, untilMs: number, reason: string): void {
    const now = this.#now();
    let b = this.#breakers.get(key);
    if (b === undefined) {
      b = { state: "closed", failures: [], openedAt: null, reopensAt: null, probeAt: null };
      this.#breakers.set(key, b);
    }
    const from = b.state;
    if (from === "open" && b.reopensAt === untilMs) return;
    if (from !== "open") b.openedAt = now;
    b.reopensAt = untilMs;
    b.probeAt = null;
    b.state = "open";
    // An open circuit whose reopen time moved is announced too, so other replicas learn the new time.
    this.#emit(key, from, "open", reason, untilMs);
  }

  /**
   * Ends a probe that neither succeeded nor counted as a failure (e.g. the upstream answered 400, or the
   * client went away), so the next request probes instead of the key waiting for the probe timeout.
   *
   * @example
   * ```ts
   * if (probe) breakers.releaseProbe("ak_123");
   * ```
   */
  releaseProbe(key: string): void {
    const b = this.#breakers.get(key);
    if (b === undefined || b.state !== "half_open" || b.probeAt === null) return;
    b.probeAt = null;
    // Announced, so replicas that hold back for this probe may probe themselves instead of waiting out the
    // probe timeout on Bedrock.
    this.#emit(key, "half_open", "half_open", "probe released without a verdict", null, false);
  }

  /**
   * Closes the key's circuit and forgets its failures: an admin action, or the proxy's own when the provider the
   * open circuit sends requests to cannot answer for the key (`reason` says which).
   *
   * @example
   * ```ts
   * breakers.reset("ak_123");
   * ```
   */
  reset(key: string, reason = "admin reset"): void {
    const b = this.#breakers.get(key);
    if (b === undefined) return;
    this.#breakers.delete(key);
    if (b.state !== "closed") this.#emit(key, b.state, "closed", reason, null);
  }

  /**
   * The key's current state; a key without an entry is closed with no failures.
   *
   * @example
   * ```ts
   * breakers.snapshot("ak_123"); // { state: "open", failures: 3, openedAt: 1_700_000_000_000, reopensAt: ... }
   * ```
   */
  snapshot(key: string): BreakerSnapshot {
    const b = this.#breakers.get(key);
    if (b === undefined) return { state: "closed", failures: 0, openedAt: null, reopensAt: null };
    let failures = b.failures.length;
    if (b.state === "closed") {
      const cutoff = this.#now() - this.#windowMs;
      for (const t of b.failures) if (t < cutoff) failures--;
    }
    return {
      state: b.state,
      failures,
      openedAt: b.openedAt,
      reopensAt: b.state === "open" ? b.reopensAt : null,
    };
  }

  /** Keys whose circuit is not closed, for metrics and the console. */
  states(): Array<{ key: string; state: CircuitState }> {
    this.#maybeSweep(this.#now());
    const out: Array<{ key: string; state: CircuitState }> = [];
    for (const [key, b] of this.#breakers) if (b.state !== "closed") out.push({ key, state: b.state });
    return out;
  }

  /**
   * Forgets every circuit, as if all were closed (after transitions may have been missed: an admin reset
   * announced meanwhile would otherwise never arrive). A plan still failing opens its circuit again after the
   * threshold, each failed request falling back meanwhile; a circuit kept open by mistake would send a working
   * key's requests to Bedrock for as long as it stays open (hours, for a usage limit).
   */
  clear(): void {
    this.#breakers.clear();
  }

  /**
   * Applies a state learned from another replica, without calling `onTransition` (no re-broadcast).
   * `half_open` means the other replica is probing: this one routes to Bedrock meanwhile, and probes itself
   * only if no outcome arrives within the probe timeout.
   *
   * @example
   * ```ts
   * breakers.applyRemote("ak_123", { state: "open", reopensAt: 1_700_000_600_000 });
   * ```
   */
  applyRemote(key: string, s: { state: CircuitState; reopensAt: number | null; probing?: boolean }): void {
    if (s.state === "closed") {
      this.#breakers.delete(key);
      return;
    }
    const now = this.#now();
    let b = this.#breakers.get(key);
    if (b === undefined) {
      b = { state: "closed", failures: [], openedAt: null, reopensAt: null, probeAt: null };
      this.#breakers.set(key, b);
    }
    if (b.state === "closed") b.openedAt = now;
    b.state = s.state;
    if (s.state === "open") {
      b.reopensAt = s.reopensAt ?? now + this.#resetMs;
      b.probeAt = null;
    } else {
      b.reopensAt = null;
      b.probeAt = s.probing === false ? null : now;
    }
  }

  #move(key: string, b: Breaker, to: CircuitState, reason: string): void {
    const from = b.state;
    b.state = to;
    this.#emit(key, from, to, reason, to === "open" ? b.reopensAt : null);
  }

  #emit(
    key: string,
    from: CircuitState,
    to: CircuitState,
    reason: string,
    reopensAt: number | null,
    probing?: false,
  ): void {
    if (this.#onTransition === undefined) return;
    try {
      this.#onTransition(
        probing === undefined
          ? { key, from, to, reason, reopensAt }
          : { key, from, to, reason, reopensAt, probing },
      );
    } catch {
      // A failing logger or broadcaster must not fail the request whose outcome caused the transition.
    }
  }

  /**
   * Once per failure window, drops the entries of keys nobody used for a window: closed ones whose failures
   * have all aged out, open ones a window past their reopen time (only an acquire moves them on), and half-open
   * ones without a live probe (learned from a replica that then stopped, or whose probe was released). A key
   * revoked or left idle while open would otherwise stay open on every replica, in `/metrics` too; a dropped
   * key is simply closed. Amortised over a window this costs next to nothing.
   */
  #maybeSweep(now: number): void {
    if (now - this.#lastSweep < this.#windowMs) return;
    this.#lastSweep = now;
    const cutoff = now - this.#windowMs;
    for (const [key, b] of this.#breakers) {
      const idle = b.state === "closed"
        ? !(b.failures[b.failures.length - 1] >= cutoff)
        : b.state === "open"
        ? b.reopensAt !== null && b.reopensAt < cutoff
        : (b.probeAt === null || now - b.probeAt >= this.#probeTimeoutMs) && (b.openedAt ?? 0) < cutoff;
      if (idle) this.#breakers.delete(key);
    }
  }
}
