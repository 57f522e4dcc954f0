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

  for (const invalidate of ["event", "clear"] as const) {
    await store.put(k.id, { bedrock_api_key: "ABSKexampleexample1234", region: "us-east-1" });
    hold = true;
    const hit = new Promise<void>((r) => (reached = r));
    const loading = store.load(k.id);
    await hit; // the load has read the credentials and not returned yet
    await db.query(sql`DELETE FROM bedrock_keys WHERE access_key_id = ${k.id}`);
    if (invalidate === "event") bus.publish({ type: "bedrock_credentials_changed", accessKeyId: k.id });
    else store.clear();
    release();
    await loading;
    assert.equal(await store.load(k.id), null, `removed credentials are not served after ${invalidate}`);
  }
});
