/**
 * The proxy's access-key lookup: cache hits, brief negative caching, shared in-flight reads, stale service during
 * a database outage, and invalidation.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { createKeyResolver } from "../lib/auth/key_resolver.ts";
import { createKeyHasher, generateAccessKey, type KeyHasher } from "../lib/auth/access_key.ts";
import { createEventBus } from "../lib/events.ts";
import { createAdmin } from "../lib/admin/admin.ts";
import type { BedrockCredentialStore } from "../lib/admin/bedrock_credentials.ts";
import type { Db } from "../lib/db/db.ts";
import { sql, type SqlFragment } from "../lib/db/sql.ts";

/**
 * Counts queries and can fail them, around a real database: at once while `down`, or, while `failing` is set,
 * once it settles (a database going away during a read).
 */
function counting(db: Db) {
  const state = { queries: 0, down: false, failing: null as Promise<void> | null };
  const wrapped: Db = {
    ...db,
    kind: db.kind,
    closed: db.closed,
    query: async <T>(f: SqlFragment) => {
      state.queries++;
      if (state.failing) await state.failing;
      if (state.down || state.failing) throw new Error("connection refused");
      return await db.query<T>(f);
    },
  };
  return { db: wrapped, state };
}

/** A user with one access key, inserted directly: the raw key and the ids. */
async function userWithKey(db: Db, hasher: KeyHasher, email: string) {
  const [u] = await db.query<{ id: string }>(sql`INSERT INTO users (email) VALUES (${email}) RETURNING id`);
  const { key, prefix } = generateAccessKey();
  const [k] = await db.query<{ id: string }>(
    sql`INSERT INTO access_keys (user_id, key_hash, key_prefix)
      VALUES (${u.id}, ${await hasher.hash(key)}, ${prefix}) RETURNING id`,
  );
  return { key, keyId: k.id, userId: u.id };
}

dbTest("lookups are cached, unknown keys briefly too, and concurrent misses share one read", async (db) => {
  const hasher = await createKeyHasher("secret-for-resolver-tests-0123456789");
  const { key, userId } = await userWithKey(db, hasher, "r@example.com");
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

  const beforeChange = state.queries;
  bus.publish({ type: "user_changed", userId });
  assert.equal((await r.resolve(key)).status, "ok");
  assert.equal(state.queries, beforeChange + 1, "the user's entries are read again after a change to it");
});

/** Holds each query's result until released, so a test can change the database while a lookup is in flight. */
function holding(db: Db) {
  let release: (() => void) | null = null;
  let reached: (() => void) | null = null;
  const state = { hold: false, queries: 0 };
  const wrapped: Db = {
    ...db,
    kind: db.kind,
    closed: db.closed,
    query: async <T>(f: SqlFragment) => {
      state.queries++;
      const rows = await db.query<T>(f);
      if (state.hold) {
        state.hold = false;
        const gate = new Promise<void>((r) => (release = r));
        reached?.();
        await gate;
      }
      return rows;
    },
  };
  /** Runs `start`, waits until its query has read the database, runs `meanwhile`, then lets the query return. */
  const during = async <T>(start: () => Promise<T>, meanwhile: () => Promise<void> | void): Promise<T> => {
    state.hold = true;
    const hit = new Promise<void>((r) => (reached = r));
    const pending = start();
    await hit;
    await meanwhile();
    release!();
    return await pending;
  };
  return { db: wrapped, state, during };
}

dbTest(
  "a key revoked, its user deactivated, or the cache cleared while a lookup is in flight is not cached as valid",
  async (db) => {
    const hasher = await createKeyHasher("secret-for-resolver-tests-0123456789");
    const [u] = await db.query<{ id: string }>(
      sql`INSERT INTO users (email) VALUES (${"race@example.com"}) RETURNING id`,
    );
    const insertKey = async () => {
      const { key, prefix } = generateAccessKey();
      const [row] = await db.query<{ id: string }>(
        sql`INSERT INTO access_keys (user_id, key_hash, key_prefix)
          VALUES (${u.id}, ${await hasher.hash(key)}, ${prefix}) RETURNING id`,
      );
      return { key, id: row.id };
    };
    const { db: slow, during } = holding(db);
    const bus = createEventBus();
    const r = createKeyResolver({ db: slow, hasher, ttlSeconds: 60, bus });

    // Revoked by id while the lookup holds the row it read before the revocation.
    const a = await insertKey();
    await during(() => r.resolve(a.key), async () => {
      await db.query(sql`UPDATE access_keys SET revoked_at = now(), is_active = false WHERE id = ${a.id}`);
      bus.publish({ type: "key_changed", accessKeyId: a.id });
    });
    assert.equal((await r.resolve(a.key)).status, "revoked", "the revocation is seen on the next request");

    // The user deactivated (all of their keys forgotten) during the lookup.
    const b = await insertKey();
    await during(() => r.resolve(b.key), async () => {
      await db.query(sql`UPDATE users SET is_active = false WHERE id = ${u.id}`);
      bus.publish({ type: "user_changed", userId: u.id });
    });
    assert.equal((await r.resolve(b.key)).status, "user_inactive");
    await db.query(sql`UPDATE users SET is_active = true WHERE id = ${u.id}`);
    bus.publish({ type: "user_changed", userId: u.id });

    // Forget-everything paths (a listener reconnect that may have missed events).
    for (const drop of [() => r.clear(), () => r.expireAll()]) {
      const c = await insertKey();
      await during(() => r.resolve(c.key), async () => {
        await db.query(sql`UPDATE access_keys SET revoked_at = now(), is_active = false WHERE id = ${c.id}`);
        drop();
      });
      assert.equal((await r.resolve(c.key)).status, "revoked");
    }
  },
);

dbTest(
  "a revocation or deactivation whose audit write fails is still announced: the key is refused at once",
  async (db) => {
    const hasher = await createKeyHasher("secret-for-resolver-tests-0123456789");
    let failAudit = false;
    const wrapped: Db = {
      ...db,
      kind: db.kind,
      closed: db.closed,
      query: <T>(f: SqlFragment) =>
        failAudit && f.build().text.includes("audit_events")
          ? Promise.reject(new Error("connection reset"))
          : db.query<T>(f),
    };
    const bus = createEventBus();
    const admin = createAdmin({
      db: wrapped,
      hasher,
      bus,
      credentials: {} as unknown as BedrockCredentialStore, // not reached by these actions
    });
    const resolver = createKeyResolver({ db: wrapped, hasher, ttlSeconds: 60, bus });
    const ctx = { actor: "admin", clientAddress: "127.0.0.1" };
    const user = await admin.createUser(ctx, { email: "audit-fails@example.com" });
    const [first, second] = [await admin.issueKey(ctx, user.id, {}), await admin.issueKey(ctx, user.id, {})];
    assert.equal((await resolver.resolve(first.key)).status, "ok");
    assert.equal((await resolver.resolve(second.key)).status, "ok");

    failAudit = true;
    await assert.rejects(admin.revokeKey(ctx, first.id), /connection reset/);
    assert.equal(
      (await resolver.resolve(first.key)).status,
      "revoked",
      "the committed revocation was announced",
    );
    await assert.rejects(admin.updateUser(ctx, user.id, { is_active: false }), /connection reset/);
    assert.equal((await resolver.resolve(second.key)).status, "user_inactive");
  },
);

dbTest(
  "a flood of guessed keys does not push valid keys out: they are still served when the database goes down",
  async (db) => {
    const hasher = await createKeyHasher("secret-for-resolver-tests-0123456789");
    const { key } = await userWithKey(db, hasher, "flood@example.com");
    const { db: c, state } = counting(db);
    const r = createKeyResolver({ db: c, hasher, ttlSeconds: 60, bus: createEventBus(), maxEntries: 50 });
    assert.equal((await r.resolve(key)).status, "ok");
    for (let i = 0; i < 500; i++) assert.equal((await r.resolve(generateAccessKey().key)).status, "unknown");
    assert.ok(!r.isUnseen(key), "still cached after 500 distinct guesses (10 times the bound)");
    assert.ok(r.size <= 100, `both maps bounded: ${r.size}`);
    state.down = true;
    assert.equal((await r.resolve(key)).status, "ok", "served from the cache during the outage");
  },
);

dbTest(
  "a key whose entry an admin change dropped is still a key seen: not a guess, yet not served stale in an outage",
  async (db) => {
    const hasher = await createKeyHasher("secret-for-resolver-tests-0123456789");
    const { key, keyId, userId } = await userWithKey(db, hasher, "edited@example.com");
    const { db: c, state } = counting(db);
    const bus = createEventBus();
    const r = createKeyResolver({ db: c, hasher, ttlSeconds: 60, bus });
    assert.equal((await r.resolve(key)).status, "ok");

    // A budget edit: the entry must be read again, but the key-guess throttle must not count it.
    bus.publish({ type: "user_changed", userId });
    assert.equal(r.isUnseen(key), false, "after a user change");
    const before = state.queries;
    assert.equal((await r.resolve(key)).status, "ok");
    assert.equal(state.queries, before + 1, "read again after the change");
    bus.publish({ type: "key_changed", accessKeyId: keyId });
    assert.equal(r.isUnseen(key), false, "after a key change");

    // A revocation, then the database goes down before the key is read again: what was known before the
    // change no longer holds, so it is not served (503), never the old 'ok'.
    await db.query(sql`UPDATE access_keys SET revoked_at = now(), is_active = false WHERE id = ${keyId}`);
    bus.publish({ type: "key_changed", accessKeyId: keyId });
    state.down = true;
    assert.equal((await r.resolve(key)).status, "unavailable");
    state.down = false;
    assert.equal((await r.resolve(key)).status, "revoked");
  },
);

dbTest("a key revoked while its re-read is under way is not served if that read then fails", async (db) => {
  const hasher = await createKeyHasher("secret-for-resolver-tests-0123456789");
  const { key, keyId } = await userWithKey(db, hasher, "inflight@example.com");
  const { db: c, state } = counting(db);
  let now = 1_000_000;
  const bus = createEventBus();
  const r = createKeyResolver({ db: c, hasher, ttlSeconds: 60, bus, now: () => now });
  assert.equal((await r.resolve(key)).status, "ok");
  now += 61_000; // expired: the next use reads again
  const gone = Promise.withResolvers<void>();
  state.failing = gone.promise;
  const pending = r.resolve(key);
  await new Promise((res) => setTimeout(res, 20));
  bus.publish({ type: "key_changed", accessKeyId: keyId });
  gone.resolve();
  assert.equal((await pending).status, "unavailable", "what was known before the change is not served");
});

dbTest(
  "a database that stalls instead of refusing: known keys are served after a short wait, then at once",
  async (db) => {
    const hasher = await createKeyHasher("secret-for-resolver-tests-0123456789");
    const { key } = await userWithKey(db, hasher, "stall@example.com");
    const { key: unseen } = await userWithKey(db, hasher, "unseen@example.com");
    let now = 1_000_000;
    const c = counting(db);
    const r = createKeyResolver({
      db: c.db,
      hasher,
      ttlSeconds: 60,
      bus: createEventBus(),
      now: () => now,
      staleWaitMs: 100,
      lookupWaitMs: 300,
    });
    assert.equal((await r.resolve(key)).status, "ok");
    // Past the TTL, the database stops answering without failing (a partition: no reset, no error).
    now += 61_000;
    let release!: () => void;
    c.state.failing = new Promise<void>((resolve) => release = resolve);
    let t0 = performance.now();
    assert.equal((await r.resolve(key)).status, "ok", "served from what was known");
    const firstWait = performance.now() - t0;
    assert.ok(firstWait >= 90 && firstWait < 1_000, `waited ${firstWait} ms`);
    t0 = performance.now();
    assert.equal((await r.resolve(key)).status, "ok");
    assert.ok(performance.now() - t0 < 50, "then at once while the database is stalled");
    // A key never seen cannot be judged: 503 (retryable) after the longer wait, never a request that hangs.
    t0 = performance.now();
    assert.equal((await r.resolve(unseen)).status, "unavailable");
    assert.ok(performance.now() - t0 >= 290);
    release();
    c.state.failing = null;
  },
);
