import assert from "node:assert/strict";
import { FailureThrottle } from "./throttle.ts";

Deno.test("failures within the window throttle a subject until the oldest one ages out", () => {
  let now = 0;
  const t = new FailureThrottle({ limit: 3, windowMs: 60_000, now: () => now });
  t.fail("a");
  now = 10_000;
  t.fail("a");
  assert.equal(t.retryAfterSeconds("a"), 0);
  now = 20_000;
  t.fail("a");
  assert.equal(t.retryAfterSeconds("a"), 40, "until the first failure is a minute old");
  assert.equal(t.retryAfterSeconds("b"), 0, "subjects are independent");
  now = 60_001;
  assert.equal(t.retryAfterSeconds("a"), 0);
  t.fail("a");
  t.clear("a");
  assert.equal(t.retryAfterSeconds("a"), 0);
});

Deno.test("memory is bounded: the oldest subjects are evicted", () => {
  const t = new FailureThrottle({ limit: 1, windowMs: 60_000, now: () => 0, maxKeys: 100 });
  for (let i = 0; i < 1000; i++) t.fail(`ip-${i}`);
  assert.equal(t.retryAfterSeconds("ip-999"), 60);
  assert.equal(t.retryAfterSeconds("ip-0"), 0, "evicted");
});

Deno.test("past the limit attempts are paced, not shut out: one per window ÷ limit", () => {
  let now = 0;
  const t = new FailureThrottle({ limit: 3, windowMs: 60_000, now: () => now });
  for (let i = 0; i < 3; i++) {
    assert.equal(t.pace("a"), 0, `attempt ${i}: below the limit, no pacing`);
    t.fail("a");
  }
  assert.equal(t.pace("a"), 0, "the first attempt past the limit goes ahead");
  now = 5_000;
  assert.equal(t.pace("a"), 15, "the next waits for its turn: 20 s after the last");
  assert.equal(t.pace("b"), 0, "subjects are independent");
  now = 20_000;
  assert.equal(t.pace("a"), 0);
  now = 25_000;
  assert.equal(t.pace("a"), 15, "a turn is taken whether or not the attempt then fails");
  now = 200_000;
  assert.equal(t.retryAfterSeconds("a"), 0, "a quiet window lifts the limit");
  assert.equal(t.pace("a"), 0);
  assert.equal(t.pace("a"), 0, "no pacing below the limit");
});

Deno.test("subjects whose failures left the window are dropped by later attempts, not kept until the cap", () => {
  let now = 0;
  const t = new FailureThrottle({ limit: 3, windowMs: 60_000, now: () => now });
  for (let i = 0; i < 1000; i++) t.fail(`user:guess-${i}`);
  for (let i = 0; i < 3; i++) t.fail("ip:10.0.0.1");
  assert.equal(t.pace("ip:10.0.0.1"), 0);
  assert.equal(t.size, 1002, "1,001 subjects with failures and one paced turn");
  now = 30_000;
  t.fail("ip:10.0.0.2");
  assert.equal(t.size, 1002, "the paced turn (20 s) is over and dropped; every failure still counts");
  now = 60_001;
  t.fail("ip:10.0.0.3");
  assert.equal(t.size, 2, "only the subjects with a failure inside the window are left");
  assert.equal(t.hasFailed("ip:10.0.0.2"), true);
  assert.equal(t.hasFailed("user:guess-0"), false);
});
