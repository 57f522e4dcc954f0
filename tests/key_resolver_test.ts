/**
 * The proxy's access-key lookup: cache hits, brief negative caching, shared in-flight reads, stale service during
 * a database outage, and invalidation.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { createKeyResolver } from "../lib/auth/key_resolver.ts";
import { createKeyHasher, generateAccessKey } from "../lib/auth/access_key.ts";
import { createEventBus } from "../lib/events.ts";
import type { Db } from "../lib/db/db.ts";
import { sql, type SqlFragment } from "../lib/db/sql.ts";

/** Counts queries and can fail them, around a real database. */
function counting(db: Db) {
  const state = { queries: 0, down: false };
  const wrapped: Db = {
    ...db,
    kind: db.kind,
    closed: db.closed,
    query: <T>(f: SqlFragment) => {
      state.queries++;
      return state.down ? Promise.reject(new Error("connection refused")) : db.query<T>(f);
    },
  };
  return { db: wrapped, state };
}

dbTest("lookups are cached, unknown keys briefly too, and concurrent misses share one read", async (db) => {
  const hasher = await createKeyHasher("secret-for-resolver-tests-0123456789");
  const [u] = await db.query<{ id: string }>(
    sql`INSERT INTO users (email) VALUES (${"r@example.com"}) RETURNING id`,
  );
  const { key, prefix } = generateAccessKey();
  await db.query(
    sql`INSERT INTO access_keys (user_id, key_hash, key_prefix) VALUES (${u.id}, ${await hasher.hash(
      key,
    )}, ${prefix})`,
  );
  let now = 1_000_000;
  const { db: c, state } = counting(db);
  const bus = createEventBus();
  const r = createKeyResolver({ db: c, hasher, ttlSeconds: 60, bus, now: () => now });

  const results = await Promise.all(Array.from({ length: 20 }, () => r.resolve(key)));
  assert.ok(results.every((x) => x.status === "ok"));
  assert.equal(state.queries, 1, "20 concurrent misses, one query");
  await r.resolve(key);
  assert.equal(state.queries, 1, "hit");

  const unknown = `ak_${"Z".repeat(43)}`;
  for (let i = 0; i < 50; i++) assert.equal((await r.resolve(unknown)).status, "unknown");
  assert.equal(state.queries, 2, "a flood of the same guess reaches the database once");
  assert.equal((await r.resolve("not-a-key")).status, "unknown");
  assert.equal(state.queries, 2, "malformed keys never reach the database");
  now += 11_000;
  await r.resolve(unknown);
  assert.equal(state.queries, 3, "negative entries expire sooner than positive ones");

  now += 61_000;
  state.down = true;
  assert.equal(
    (await r.resolve(key)).status,
    "ok",
    "an expired entry is served stale while the database is down",
  );
  const never = generateAccessKey().key;
  assert.equal((await r.resolve(never)).status, "unavailable", "nothing cached and no database: not a 401");
  state.down = false;

  // After missed invalidations (a listener reconnect) entries are re-read on next use, yet a database that
  // fails again still finds them: no 503 for a key that was working.
  await r.resolve(key);
  const before = state.queries;
  r.expireAll();
  await r.resolve(key);
  assert.equal(state.queries, before + 1, "re-read after expireAll");
  r.expireAll();
  state.down = true;
  assert.equal((await r.resolve(key)).status, "ok", "served stale while the database is down again");
  state.down = false;

  bus.publish({ type: "user_changed", userId: u.id });
  assert.equal(r.size, 1, "the user's entries were dropped, the unknown key's remains");
});
