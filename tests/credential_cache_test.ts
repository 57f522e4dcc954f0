/**
 * The Bedrock credential cache against invalidations that arrive while a load is reading the database.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { createBedrockCredentialStore } from "../lib/admin/bedrock_credentials.ts";
import { createLocalEncryptor } from "../lib/crypto/mod.ts";
import { createEventBus } from "../lib/events.ts";
import type { Db } from "../lib/db/db.ts";
import { sql, type SqlFragment } from "../lib/db/sql.ts";
import { TimedOut } from "../lib/within.ts";

dbTest("credentials removed while a load is in flight are not cached for the next load", async (db) => {
  const [u] = await db.query<{ id: string }>(
    sql`INSERT INTO users (email) VALUES (${"cred-race@example.com"}) RETURNING id`,
  );
  const [k] = await db.query<{ id: string }>(
    sql`INSERT INTO access_keys (user_id, key_hash, key_prefix)
      VALUES (${u.id}, ${"0".repeat(64)}, ${"ak_race"}) RETURNING id`,
  );
  // Each query may be held after it has read the database, until released.
  let hold = false;
  let release: () => void = () => {};
  let reached: () => void = () => {};
  const slow: Db = {
    ...db,
    kind: db.kind,
    closed: db.closed,
    query: async <T>(f: SqlFragment) => {
      const rows = await db.query<T>(f);
      if (hold) {
        hold = false;
        const gate = new Promise<void>((r) => (release = r));
        reached();
        await gate;
      }
      return rows;
    },
  };
  const bus = createEventBus();
  const store = createBedrockCredentialStore({
    db: slow,
    encryptor: createLocalEncryptor(crypto.getRandomValues(new Uint8Array(32))),
    ttlSeconds: 300,
    bus,
  });

  for (const invalidate of ["event", "expireAll"] as const) {
    await store.put(k.id, { bedrock_api_key: "ABSKexampleexample1234", region: "us-east-1" });
    hold = true;
    const hit = new Promise<void>((r) => (reached = r));
    const loading = store.load(k.id);
    await hit; // the load has read the credentials and not returned yet
    await db.query(sql`DELETE FROM bedrock_keys WHERE access_key_id = ${k.id}`);
    if (invalidate === "event") bus.publish({ type: "bedrock_credentials_changed", accessKeyId: k.id });
    else store.expireAll();
    release();
    await loading;
    assert.equal(await store.load(k.id), null, `removed credentials are not served after ${invalidate}`);
  }
});

dbTest(
  "credentials opened before keep serving the fallback while the database fails or stalls",
  async (db) => {
    const [u] = await db.query<{ id: string }>(
      sql`INSERT INTO users (email) VALUES (${"cred-outage@example.com"}) RETURNING id`,
    );
    const [k] = await db.query<{ id: string }>(
      sql`INSERT INTO access_keys (user_id, key_hash, key_prefix)
      VALUES (${u.id}, ${"1".repeat(64)}, ${"ak_outage"}) RETURNING id`,
    );
    let mode: "up" | "down" | "stalled" = "up";
    const flaky: Db = {
      ...db,
      kind: db.kind,
      closed: db.closed,
      query: <T>(f: SqlFragment) => {
        if (mode === "down") {
          return Promise.reject(
            Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
          );
        }
        if (mode === "stalled") return new Promise<T[]>(() => {});
        return db.query<T>(f);
      },
    };
    let now = 0;
    const bus = createEventBus();
    const store = createBedrockCredentialStore({
      db: flaky,
      encryptor: createLocalEncryptor(crypto.getRandomValues(new Uint8Array(32))),
      ttlSeconds: 300,
      bus,
      now: () => now,
    });
    await store.put(k.id, { bedrock_api_key: "ABSKexampleexample5678", region: "us-east-1" });
    assert.equal((await store.load(k.id))?.region, "us-east-1");

    now += 301_000; // past the TTL
    mode = "down";
    assert.equal((await store.load(k.id))?.credentials.kind, "api_key", "refused: what was opened stands in");
    mode = "stalled";
    const t0 = performance.now();
    assert.equal((await store.load(k.id))?.credentials.kind, "api_key", "stalled: after a short wait");
    assert.ok(performance.now() - t0 < 3_000);
    // A resync after missed invalidations expires entries without dropping them.
    mode = "up";
    await store.load(k.id);
    store.expireAll();
    mode = "down";
    assert.equal((await store.load(k.id))?.credentials.kind, "api_key");
    // A change that was heard drops them: nothing stale is served after it.
    bus.publish({ type: "bedrock_credentials_changed", accessKeyId: k.id });
    await assert.rejects(() => store.load(k.id));
    mode = "up";
  },
);

dbTest(
  "a first read of credentials on a database that stalls gives up at its wait, not the connection's",
  async (db) => {
    const stalled: Db = { ...db, kind: db.kind, closed: db.closed, query: () => new Promise(() => {}) };
    const store = createBedrockCredentialStore({
      db: stalled,
      encryptor: createLocalEncryptor(crypto.getRandomValues(new Uint8Array(32))),
      ttlSeconds: 300,
      bus: createEventBus(),
      firstWaitMs: 300,
    });
    const started = performance.now();
    await assert.rejects(store.load(crypto.randomUUID()), TimedOut);
    const waited = performance.now() - started;
    assert.ok(waited >= 250 && waited < 5_000, `${Math.round(waited)} ms`);
  },
);
