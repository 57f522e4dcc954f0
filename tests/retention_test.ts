import assert from "node:assert/strict";
import { backends, dbTest, freshDb } from "./helpers/db.ts";
import { openPostgres } from "../lib/db/postgres.ts";
import { RetentionJob } from "../lib/usage/retention.ts";
import { sql } from "../lib/db/sql.ts";
import { silentLogger } from "../lib/log.ts";

dbTest("retention deletes old usage rows in batches and keeps recent rows and aggregates", async (db) => {
  const [u] = await db.query<{ id: string }>(
    sql`INSERT INTO users (email) VALUES (${"ret@example.com"}) RETURNING id`,
  );
  const [k] = await db.query<{ id: string }>(
    sql`INSERT INTO access_keys (user_id, key_hash, key_prefix) VALUES (${u.id}, ${"h"}, ${"ak_x"}) RETURNING id`,
  );
  await db.query(
    sql`INSERT INTO token_usages (access_key_id, request_id, provider, latency_ms, status_code, created_at)
    SELECT ${k.id}, 'old-' || g, 'anthropic', 1, 200, now() - interval '100 days' FROM generate_series(1, 23) g`,
  );
  await db.query(
    sql`INSERT INTO token_usages (access_key_id, request_id, provider, latency_ms, status_code, created_at)
    SELECT ${k.id}, 'new-' || g, 'anthropic', 1, 200, now() - interval '10 days' FROM generate_series(1, 5) g`,
  );
  await db.query(
    sql`INSERT INTO usage_aggregates (access_key_id, time_bucket, granularity, provider, request_count)
    VALUES (${k.id}, now() - interval '100 days', 'day', 'anthropic', 23)`,
  );
  const job = new RetentionJob({ db, log: silentLogger, days: 90, batch: 5 });
  assert.deepEqual(await job.runOnce(), { deleted: 23, skipped: false });
  const left = await db.query<{ request_id: string }>(
    sql`SELECT request_id FROM token_usages ORDER BY request_id`,
  );
  assert.deepEqual(left.map((r) => r.request_id), ["new-1", "new-2", "new-3", "new-4", "new-5"]);
  assert.equal((await db.query(sql`SELECT 1 FROM usage_aggregates`)).length, 1, "aggregates are kept");
  assert.deepEqual(await new RetentionJob({ db, log: silentLogger, days: 0 }).runOnce(), {
    deleted: 0,
    skipped: true,
  });
});

// Several replicas exist only on PostgreSQL (PGlite is one process).
Deno.test({
  name: "while another replica holds the retention lock, a pass skips [postgres]",
  ignore: !backends().includes("postgres"),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { db, url, cleanup } = await freshDb("postgres");
  const other = openPostgres({ url, max: 1 });
  try {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const locked = other.begin(async (tx) => {
      await tx.query(sql`SELECT pg_advisory_xact_lock(727310002)`);
      await held;
    });
    await new Promise((r) => setTimeout(r, 100));
    const result = await new RetentionJob({ db, log: silentLogger, days: 1 }).runOnce();
    assert.deepEqual(result, { deleted: 0, skipped: true });
    release();
    await locked;
  } finally {
    await other.close();
    await cleanup();
  }
});

dbTest(
  "stopping retention ends a pass after its current batch, so shutdown does not wait for the backlog",
  async (db) => {
    const [u] = await db.query<{ id: string }>(
      sql`INSERT INTO users (email) VALUES (${"stop@example.com"}) RETURNING id`,
    );
    const [k] = await db.query<{ id: string }>(
      sql`INSERT INTO access_keys (user_id, key_hash, key_prefix) VALUES (${u.id}, ${"h2"}, ${"ak_y"}) RETURNING id`,
    );
    await db.query(
      sql`INSERT INTO token_usages (access_key_id, request_id, provider, latency_ms, status_code, created_at)
    SELECT ${k.id}, 'old-' || g, 'anthropic', 1, 200, now() - interval '100 days' FROM generate_series(1, 23) g`,
    );
    const job = new RetentionJob({ db, log: silentLogger, days: 90, batch: 5 });
    const pass = job.runOnce();
    await job.stop();
    assert.deepEqual(await pass, { deleted: 5, skipped: false });
    const [{ n }] = await db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM token_usages`);
    assert.equal(n, 18, "the rest waits for the next start");
  },
);
