import assert from "node:assert/strict";
import { BudgetGuard } from "./budgets.ts";
import type { Db } from "../db/db.ts";

/** A database that reports `spend` until `down` is set, then fails every query. */
function spendDb(spend: number) {
  const state = { down: false, queries: 0 };
  const db = {
    kind: "pglite",
    query: () => {
      state.queries++;
      return state.down ? Promise.reject(new Error("connection refused")) : Promise.resolve([{ spend }]);
    },
  } as unknown as Db;
  return { db, state };
}

Deno.test("with the database down, this month's last known spend still refuses a user over budget", async () => {
  let now = Date.parse("2026-06-10T00:00:00Z");
  const { db, state } = spendDb(12);
  const guard = new BudgetGuard({ db, timeZone: "UTC", now: () => now, ttlMs: 1000 });
  assert.equal((await guard.check("u1", 10)).ok, false, "over budget, from the database");
  state.down = true;
  now += 60_000; // the cached figure is stale now
  const verdict = await guard.check("u1", 10);
  assert.equal(verdict.ok, false, "still refused: the outage is no way around the budget");
  assert.equal(!verdict.ok && verdict.spendUsd, 12);
  assert.equal((await guard.check("u1", 20)).ok, true, "under a higher budget");
  // Nothing known for this user: fail open rather than block everyone during an outage.
  assert.equal((await guard.check("u2", 10)).ok, true);
  // Last month's figure is not this month's spend.
  now = Date.parse("2026-07-01T00:00:01Z");
  assert.equal((await guard.check("u1", 10)).ok, true);
  assert.ok(state.queries >= 4);
});

/** A database whose spend query waits for `release()` (or `delay` ms) and then answers `spend` or fails. */
function gatedDb(answer: { spend: number; fail?: boolean; delayMs?: number }) {
  const state = { queries: 0, releases: [] as Array<() => void> };
  const db = {
    kind: "pglite",
    query: () => {
      state.queries++;
      return new Promise((resolve, reject) => {
        const settle = () =>
          answer.fail ? reject(new Error("connection timeout")) : resolve([{ spend: answer.spend }]);
        if (answer.delayMs !== undefined) setTimeout(settle, answer.delayMs);
        else state.releases.push(settle);
      });
    },
  } as unknown as Db;
  return { db, state };
}

const bedrockCost = (userId: string, costUsd: number) =>
  ({
    provider: "bedrock",
    userId,
    costUsd,
    createdAt: "2026-06-10T00:00:00.000Z",
  }) as unknown as import("../db/usage.ts").UsageRecord;

Deno.test("a known figure is answered at once while the database is slow or down; it is asked at most every 5 s", async () => {
  let now = Date.parse("2026-06-10T00:00:00Z");
  const answer = { spend: 12, fail: false, delayMs: 50 };
  const { db, state } = gatedDb(answer);
  const guard = new BudgetGuard({ db, timeZone: "UTC", now: () => now, ttlMs: 1000 });
  assert.equal((await guard.check("u1", 10)).ok, false);
  assert.equal(state.queries, 1);
  answer.fail = true;
  answer.delayMs = 1000; // a partition: each query hangs a second, then fails
  now += 60_000;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const verdict = await guard.check("u1", 10);
    assert.ok(performance.now() - t0 < 100, "answered from the known figure, not after the database");
    assert.equal(verdict.ok, false);
  }
  assert.equal(state.queries, 2, "one refresh in the background, shared");
  await new Promise((r) => setTimeout(r, 1100)); // it fails
  now += 1000;
  await guard.check("u1", 10);
  assert.equal(state.queries, 2, "not asked again within 5 s of the failure");
  now += 5000;
  await guard.check("u1", 10);
  assert.equal(state.queries, 3, "asked again after 5 s");
  await new Promise((r) => setTimeout(r, 1100));

  // A user with no known figure waits for the first failure only, then fails open for 5 s without asking.
  const t0 = performance.now();
  assert.equal((await guard.check("u2", 10)).ok, true);
  assert.ok(performance.now() - t0 >= 900);
  const t1 = performance.now();
  assert.equal((await guard.check("u2", 10)).ok, true);
  assert.ok(performance.now() - t1 < 100, "the failure is remembered");
  assert.equal(state.queries, 4);
});

Deno.test("spend committed while a refresh is in flight is not lost when the refresh lands", async () => {
  let now = Date.parse("2026-06-10T00:00:00Z");
  const { db, state } = gatedDb({ spend: 0 });
  const guard = new BudgetGuard({ db, timeZone: "UTC", now: () => now, ttlMs: 30_000 });
  const first = guard.check("u", 0.4); // reads spend 0 …
  guard.onCommitted([bedrockCost("u", 0.5)]); // … while $0.50 is committed
  state.releases.shift()!();
  assert.equal((await first).ok, false, "the commit made during the refresh counts with its figure");
  now += 25_000; // within the cache lifetime: the figure stands until the next refresh
  const verdict = await guard.check("u", 0.4);
  assert.equal(verdict.ok, false, "and is not overwritten by the figure read before it");
  assert.equal(!verdict.ok && verdict.spendUsd, 0.5);
});

Deno.test("spend equal to the budget is refused, whatever floating point makes of the sum", async () => {
  const now = Date.parse("2026-06-10T00:00:00Z");
  const { db } = spendDb(0.7);
  const guard = new BudgetGuard({ db, timeZone: "UTC", now: () => now });
  assert.equal((await guard.check("u", 0.8)).ok, true);
  guard.onCommitted([bedrockCost("u", 0.1)]); // 0.7 + 0.1 is 0.7999999999999999 in floats
  assert.equal((await guard.check("u", 0.8)).ok, false);
});

Deno.test("a first check on a database that stalls waits a second, lets the user through, and the late figure counts", async () => {
  const now = Date.parse("2026-06-10T00:00:00Z");
  const { db, state } = gatedDb({ spend: 12 }); // answers only when released: a failover's silent connection
  const guard = new BudgetGuard({ db, timeZone: "UTC", now: () => now });
  const t0 = performance.now();
  assert.equal((await guard.check("u1", 10)).ok, true, "let through, as with the database down");
  const waited = performance.now() - t0;
  assert.ok(
    waited >= 900 && waited < 5_000,
    `waited ${Math.round(waited)} ms, not as long as the connection`,
  );
  state.releases.forEach((release) => release());
  await new Promise((r) => setTimeout(r, 0));
  assert.equal((await guard.check("u1", 10)).ok, false, "the figure that came late is used");
  assert.equal(state.queries, 1);
});
