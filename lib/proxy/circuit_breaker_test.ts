import assert from "node:assert/strict";
import { type BreakerOptions, CircuitBreakers, type TransitionEvent } from "./circuit_breaker.ts";

const WINDOW = 60_000;
const RESET = 1_800_000;

function setup(overrides: Partial<BreakerOptions> = {}) {
  const clock = { t: 1_000_000 };
  const events: TransitionEvent[] = [];
  const breakers = new CircuitBreakers({
    failureThreshold: 3,
    failureWindowMs: WINDOW,
    resetTimeoutMs: RESET,
    now: () => clock.t,
    onTransition: (e) => events.push(e),
    ...overrides,
  });
  return { clock, events, breakers };
}

function open(b: CircuitBreakers, key: string): void {
  for (let i = 0; i < 3; i++) b.recordFailure(key, false);
  assert.equal(b.snapshot(key).state, "open");
}

Deno.test("a key with no history routes to the plan without a probe", () => {
  const { breakers } = setup();
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: false });
  assert.equal(breakers.size, 0);
});

Deno.test("threshold failures within the window open the circuit", () => {
  const { clock, breakers } = setup();
  breakers.recordFailure("k", false);
  clock.t += 20_000;
  breakers.recordFailure("k", false);
  assert.equal(breakers.snapshot("k").state, "closed");
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: false });
  clock.t += 39_999; // third failure 59.999 s after the first
  breakers.recordFailure("k", false);
  assert.equal(breakers.snapshot("k").state, "open");
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });
});

Deno.test("failures spread beyond the window do not open the circuit", () => {
  const { clock, breakers } = setup();
  for (let i = 0; i < 10; i++) {
    breakers.recordFailure("k", false);
    clock.t += 30_001; // any three span more than 60 s
  }
  assert.equal(breakers.snapshot("k").state, "closed");
  assert.ok(breakers.snapshot("k").failures <= 2);
});

Deno.test("old failures are pruned from the sliding window", () => {
  const { clock, breakers } = setup();
  breakers.recordFailure("k", false);
  breakers.recordFailure("k", false);
  clock.t += WINDOW + 1;
  assert.equal(breakers.snapshot("k").failures, 0);
  breakers.recordFailure("k", false);
  assert.equal(breakers.snapshot("k").state, "closed");
  assert.equal(breakers.snapshot("k").failures, 1);
});

Deno.test("successes between failures do not reset the count: failures within the window open the circuit", () => {
  const { breakers } = setup();
  breakers.recordFailure("k", false);
  breakers.recordSuccess("k", false);
  breakers.recordFailure("k", false);
  breakers.recordSuccess("k", false);
  assert.equal(breakers.snapshot("k").failures, 2);
  assert.equal(breakers.snapshot("k").state, "closed");
  breakers.recordFailure("k", false);
  assert.equal(breakers.snapshot("k").state, "open");
});

Deno.test("open routes to bedrock until the reset timeout, then one probe goes to the plan", () => {
  const { clock, breakers } = setup();
  open(breakers, "k");
  clock.t += RESET - 1;
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });
  clock.t += 1;
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: true });
  assert.equal(breakers.snapshot("k").state, "half_open");
});

Deno.test("half-open with 20 concurrent acquires yields exactly one probe", async () => {
  const { clock, breakers } = setup();
  open(breakers, "k");
  clock.t += RESET;
  const results = await Promise.all(
    Array.from({ length: 20 }, () => Promise.resolve().then(() => breakers.acquire("k"))),
  );
  assert.equal(results.filter((r) => r.probe).length, 1);
  assert.equal(results.filter((r) => r.route === "plan").length, 1);
  assert.equal(results.filter((r) => r.route === "bedrock").length, 19);
});

Deno.test("a probe success closes the circuit and frees the key", () => {
  const { clock, breakers } = setup();
  open(breakers, "k");
  clock.t += RESET;
  const { probe } = breakers.acquire("k");
  breakers.recordSuccess("k", probe);
  assert.deepEqual(breakers.snapshot("k"), { state: "closed", failures: 0, openedAt: null, reopensAt: null });
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: false });
  assert.equal(breakers.size, 0);
});

Deno.test("a probe failure reopens for the full reset timeout", () => {
  const { clock, breakers } = setup();
  open(breakers, "k");
  clock.t += RESET + 5_000;
  const { probe } = breakers.acquire("k");
  clock.t += 2_000;
  breakers.recordFailure("k", probe);
  const s = breakers.snapshot("k");
  assert.equal(s.state, "open");
  assert.equal(s.openedAt, clock.t);
  assert.equal(s.reopensAt, clock.t + RESET);
  clock.t += RESET - 1;
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });
  clock.t += 1;
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: true });
});

Deno.test("late outcomes of non-probe requests do not move an open or half-open circuit", () => {
  const { clock, breakers, events } = setup();
  open(breakers, "k");
  breakers.recordSuccess("k", false); // a request sent before the circuit opened
  breakers.recordFailure("k", false);
  assert.equal(breakers.snapshot("k").state, "open");
  assert.equal(breakers.snapshot("k").reopensAt, clock.t + RESET);
  clock.t += RESET;
  breakers.acquire("k");
  breakers.recordSuccess("k", false);
  breakers.recordFailure("k", false);
  assert.equal(breakers.snapshot("k").state, "half_open");
  assert.deepEqual(events.map((e) => e.to), ["open", "half_open"]);
});

Deno.test("openUntil honours the announced reset time", () => {
  const { clock, breakers, events } = setup();
  const until = clock.t + 3 * 3_600_000; // far beyond resetTimeoutMs
  breakers.openUntil("k", until, "plan usage limit reached");
  assert.deepEqual(breakers.snapshot("k"), {
    state: "open",
    failures: 0,
    openedAt: clock.t,
    reopensAt: until,
  });
  clock.t = until - 1;
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });
  clock.t = until;
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: true });
  assert.deepEqual(events[0], {
    key: "k",
    from: "closed",
    to: "open",
    reason: "plan usage limit reached",
    reopensAt: until,
  });
});

Deno.test("openUntil during a probe reopens until the announced time and drops the probe", () => {
  const { clock, breakers, events } = setup();
  open(breakers, "k");
  clock.t += RESET;
  const { probe } = breakers.acquire("k");
  assert.equal(probe, true);
  const until = clock.t + 600_000;
  breakers.openUntil("k", until, "plan usage limit reached");
  breakers.releaseProbe("k"); // the caller's cleanup after the 429 must not disturb the open circuit
  assert.equal(breakers.snapshot("k").state, "open");
  assert.equal(breakers.snapshot("k").reopensAt, until);
  assert.deepEqual(events.at(-1), {
    key: "k",
    from: "half_open",
    to: "open",
    reason: "plan usage limit reached",
    reopensAt: until,
  });
});

Deno.test("openUntil on an open circuit moves the reopen time and announces it once", () => {
  const { clock, breakers, events } = setup();
  open(breakers, "k");
  const openedAt = clock.t;
  const until = clock.t + 5_000;
  breakers.openUntil("k", until, "usage limit");
  breakers.openUntil("k", until, "usage limit");
  assert.equal(breakers.snapshot("k").openedAt, openedAt);
  assert.equal(breakers.snapshot("k").reopensAt, until);
  assert.deepEqual(events.map((e) => [e.from, e.to, e.reopensAt]), [["closed", "open", openedAt + RESET], [
    "open",
    "open",
    until,
  ]]);
});

Deno.test("releaseProbe lets the next request probe", () => {
  const { clock, breakers } = setup();
  open(breakers, "k");
  clock.t += RESET;
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: true });
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });
  breakers.releaseProbe("k");
  assert.equal(breakers.snapshot("k").state, "half_open");
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: true });
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });
});

Deno.test("a probe outstanding past the probe timeout is considered lost", () => {
  const { clock, breakers } = setup();
  open(breakers, "k");
  clock.t += RESET;
  assert.equal(breakers.acquire("k").probe, true);
  clock.t += 10 * 60_000 - 1;
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });
  clock.t += 1;
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: true });
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });

  const custom = setup({ probeTimeoutMs: 1_000 });
  open(custom.breakers, "k");
  custom.clock.t += RESET;
  custom.breakers.acquire("k");
  custom.clock.t += 1_000;
  assert.equal(custom.breakers.acquire("k").probe, true);
});

Deno.test("reset closes an open circuit", () => {
  const { breakers, events } = setup();
  open(breakers, "k");
  breakers.reset("k");
  assert.deepEqual(breakers.snapshot("k"), { state: "closed", failures: 0, openedAt: null, reopensAt: null });
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: false });
  assert.equal(breakers.size, 0);
  assert.deepEqual(events.at(-1), {
    key: "k",
    from: "open",
    to: "closed",
    reason: "admin reset",
    reopensAt: null,
  });
  breakers.reset("k"); // already closed: nothing to announce
  breakers.reset("never-seen");
  assert.equal(events.length, 2);
});

Deno.test("snapshot reports state, failures and times", () => {
  const { clock, breakers } = setup();
  assert.deepEqual(breakers.snapshot("k"), { state: "closed", failures: 0, openedAt: null, reopensAt: null });
  breakers.recordFailure("k", false);
  clock.t += 1_000;
  breakers.recordFailure("k", false);
  assert.deepEqual(breakers.snapshot("k"), { state: "closed", failures: 2, openedAt: null, reopensAt: null });
  clock.t += 1_000;
  const openedAt = clock.t;
  breakers.recordFailure("k", false);
  assert.deepEqual(breakers.snapshot("k"), {
    state: "open",
    failures: 3,
    openedAt,
    reopensAt: openedAt + RESET,
  });
  clock.t += RESET;
  breakers.acquire("k");
  assert.deepEqual(breakers.snapshot("k"), { state: "half_open", failures: 3, openedAt, reopensAt: null });
});

Deno.test("onTransition fires for every state change, in order", () => {
  const { clock, breakers, events } = setup();
  open(breakers, "k");
  const t0 = clock.t;
  clock.t += RESET;
  let { probe } = breakers.acquire("k");
  breakers.recordFailure("k", probe);
  const t1 = clock.t;
  clock.t += RESET;
  ({ probe } = breakers.acquire("k"));
  breakers.recordSuccess("k", probe);
  assert.deepEqual(events, [
    { key: "k", from: "closed", to: "open", reason: "3 failures within 60000 ms", reopensAt: t0 + RESET },
    { key: "k", from: "open", to: "half_open", reason: "reset timeout elapsed", reopensAt: null },
    { key: "k", from: "half_open", to: "open", reason: "probe failed", reopensAt: t1 + RESET },
    { key: "k", from: "open", to: "half_open", reason: "reset timeout elapsed", reopensAt: null },
    { key: "k", from: "half_open", to: "closed", reason: "probe succeeded", reopensAt: null },
  ]);
});

Deno.test("a throwing onTransition does not break the breaker", () => {
  const { breakers } = setup({
    onTransition: () => {
      throw new Error("broadcast down");
    },
  });
  open(breakers, "k");
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });
});

Deno.test("keys are independent", () => {
  const { breakers } = setup();
  open(breakers, "a");
  assert.deepEqual(breakers.acquire("b"), { route: "plan", probe: false });
  assert.deepEqual(breakers.acquire("a"), { route: "bedrock", probe: false });
});

Deno.test("applyRemote adopts another replica's state without re-broadcasting", () => {
  const { clock, breakers, events } = setup();
  const until = clock.t + 120_000;
  breakers.applyRemote("k", { state: "open", reopensAt: until });
  assert.deepEqual(breakers.snapshot("k"), {
    state: "open",
    failures: 0,
    openedAt: clock.t,
    reopensAt: until,
  });
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });

  // Another replica is probing: route to Bedrock and wait for its outcome.
  breakers.applyRemote("k", { state: "half_open", reopensAt: null });
  assert.equal(breakers.snapshot("k").state, "half_open");
  assert.deepEqual(breakers.acquire("k"), { route: "bedrock", probe: false });

  breakers.applyRemote("k", { state: "closed", reopensAt: null });
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: false });
  assert.equal(breakers.size, 0);

  // An open state without a time falls back to the local reset timeout.
  breakers.applyRemote("k", { state: "open", reopensAt: null });
  assert.equal(breakers.snapshot("k").reopensAt, clock.t + RESET);
  assert.deepEqual(events, []);
});

Deno.test("a remote half-open whose probe never reports lets this replica probe after the probe timeout", () => {
  const { clock, breakers } = setup();
  breakers.applyRemote("k", { state: "half_open", reopensAt: null });
  clock.t += 10 * 60_000;
  assert.deepEqual(breakers.acquire("k"), { route: "plan", probe: true });
});

Deno.test("memory: 10,000 keys each with one success leave no entries", () => {
  const { breakers } = setup();
  for (let i = 0; i < 10_000; i++) {
    const key = `ak_${i}`;
    const { probe } = breakers.acquire(key);
    breakers.recordSuccess(key, probe);
  }
  assert.equal(breakers.size, 0);
});

Deno.test("memory: keys that failed once are dropped after their failures age out", () => {
  const { clock, breakers } = setup();
  for (let i = 0; i < 10_000; i++) breakers.recordFailure(`ak_${i}`, false);
  assert.equal(breakers.size, 10_000);
  clock.t += WINDOW + 1;
  breakers.recordFailure("other", false); // any failure triggers the once-per-window sweep
  assert.equal(breakers.size, 1);
  // A single stale key is also dropped when it is next used.
  clock.t += WINDOW + 1;
  breakers.acquire("other");
  assert.equal(breakers.size, 0);
});

Deno.test("memory: a recovered key holds no entry", () => {
  const { clock, breakers } = setup();
  open(breakers, "k");
  clock.t += RESET;
  breakers.recordSuccess("k", breakers.acquire("k").probe);
  assert.equal(breakers.size, 0);
});

Deno.test("a threshold of one opens on the first failure", () => {
  const { breakers } = setup({ failureThreshold: 1 });
  breakers.recordFailure("k", false);
  assert.equal(breakers.snapshot("k").state, "open");
});

Deno.test("invalid options are rejected", () => {
  const base = { failureThreshold: 3, failureWindowMs: 1, resetTimeoutMs: 1, now: () => 0 };
  assert.throws(
    () => new CircuitBreakers({ ...base, failureThreshold: 0 }),
    /failureThreshold must be a positive/,
  );
  assert.throws(() => new CircuitBreakers({ ...base, failureThreshold: 1.5 }), /positive integer/);
  assert.throws(() => new CircuitBreakers({ ...base, failureWindowMs: NaN }), /failureWindowMs/);
  assert.throws(() => new CircuitBreakers({ ...base, resetTimeoutMs: -1 }), /resetTimeoutMs/);
  assert.throws(() => new CircuitBreakers({ ...base, probeTimeoutMs: 0 }), /probeTimeoutMs/);
});

Deno.test("a probe released without a verdict is announced, so a replica holding back for it probes itself", () => {
  const a = setup();
  const b = setup({ now: () => a.clock.t });
  // Replica A's transitions reach B as the event bus carries them.
  const relay = (from: ReturnType<typeof setup>, to: ReturnType<typeof setup>) => {
    for (const e of from.events.splice(0)) {
      to.breakers.applyRemote(e.key, { state: e.to, reopensAt: e.reopensAt, probing: e.probing });
    }
  };
  open(a.breakers, "k");
  relay(a, b);
  a.clock.t += RESET;
  const { probe } = a.breakers.acquire("k");
  assert.equal(probe, true);
  relay(a, b);
  assert.deepEqual(b.breakers.acquire("k"), { route: "bedrock", probe: false }, "B waits for A's probe");
  // A's probe ends without a verdict (a 400, or its client left).
  a.breakers.releaseProbe("k");
  assert.deepEqual(a.events.at(-1), {
    key: "k",
    from: "half_open",
    to: "half_open",
    reason: "probe released without a verdict",
    reopensAt: null,
    probing: false,
  });
  relay(a, b);
  assert.deepEqual(
    b.breakers.acquire("k"),
    { route: "plan", probe: true },
    "B probes now, not in 10 minutes",
  );
  // Releasing again, with no probe out, announces nothing.
  a.breakers.releaseProbe("k");
  a.breakers.releaseProbe("k");
  assert.equal(a.events.length, 0);
});

Deno.test("memory: keys left open, or half-open by a replica that stopped, are dropped once idle a window", () => {
  const { clock, breakers } = setup();
  open(breakers, "revoked-key"); // opened, then never used again
  breakers.applyRemote("orphan", { state: "half_open", reopensAt: null }); // its prober died
  breakers.applyRemote("busy", { state: "open", reopensAt: clock.t + 10 * RESET }); // still open for long
  clock.t += 5 * 60_000;
  assert.equal(breakers.states().length, 3, "nothing idle long enough yet");
  clock.t += RESET + WINDOW; // the open key's reopen time is a window past; the orphan's probe long lost
  assert.deepEqual(breakers.states(), [{ key: "busy", state: "open" }]);
  assert.equal(breakers.size, 1);
  assert.deepEqual(
    breakers.acquire("revoked-key"),
    { route: "plan", probe: false },
    "a dropped key is closed",
  );
  assert.deepEqual(breakers.acquire("busy"), { route: "bedrock", probe: false }, "an open one still holds");
});

Deno.test("clear forgets every circuit, this replica's own and those learned from others", () => {
  const { clock, breakers } = setup();
  open(breakers, "mine");
  breakers.applyRemote("theirs", { state: "open", reopensAt: clock.t + RESET });
  breakers.clear(); // after a listener reconnect: a reset announced meanwhile may have been missed
  assert.deepEqual(breakers.states(), []);
  assert.deepEqual(breakers.acquire("mine"), { route: "plan", probe: false });
  assert.deepEqual(breakers.acquire("theirs"), { route: "plan", probe: false });
});
