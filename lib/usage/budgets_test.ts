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
