/**
 * The three "Useful SQL Queries" of the seed specification, copied unchanged, run on both backends against
 * data written through the schema.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { raw, sql } from "../lib/db/sql.ts";

const VIEW_RECENT_USAGE = `SELECT
    ak.id as access_key_id,
    u.email,
    tu.provider,
    tu.is_fallback,
    tu.input_tokens,
    tu.output_tokens,
    tu.latency_ms,
    tu.created_at
FROM token_usages tu
JOIN access_keys ak ON tu.access_key_id = ak.id
JOIN users u ON ak.user_id = u.id
WHERE tu.created_at > NOW() - INTERVAL '1 hour'
ORDER BY tu.created_at DESC;`;

const HIGH_USAGE_USERS = `SELECT
    u.email,
    COUNT(*) as request_count,
    SUM(tu.input_tokens + tu.output_tokens) as total_tokens
FROM token_usages tu
JOIN access_keys ak ON tu.access_key_id = ak.id
JOIN users u ON ak.user_id = u.id
WHERE tu.created_at > NOW() - INTERVAL '1 day'
GROUP BY u.email
ORDER BY total_tokens DESC
LIMIT 10;`;

const FALLBACK_RATE = `SELECT
    provider,
    is_fallback,
    COUNT(*) as request_count
FROM token_usages
WHERE created_at > NOW() - INTERVAL '1 day'
GROUP BY provider, is_fallback;`;

dbTest("the seed's useful SQL queries run unchanged", async (db) => {
  const [alice] = await db.query<{ id: string }>(
    sql`INSERT INTO users (email) VALUES (${"alice@example.com"}) RETURNING id`,
  );
  const [bob] = await db.query<{ id: string }>(
    sql`INSERT INTO users (email) VALUES (${"bob@example.com"}) RETURNING id`,
  );
  const key = async (userId: string, hash: string) =>
    (await db.query<{ id: string }>(
      sql`INSERT INTO access_keys (user_id, key_hash, key_prefix) VALUES (${userId}, ${hash}, ${"ak_x"}) RETURNING id`,
    ))[0].id;
  const ka = await key(alice.id, "h1");
  const kb = await key(bob.id, "h2");
  const usage = (k: string, rid: string, provider: string, fb: boolean, i: number, o: number, ago: string) =>
    db.query(sql`INSERT INTO token_usages
      (access_key_id, request_id, provider, is_fallback, input_tokens, output_tokens, latency_ms, status_code, created_at)
      VALUES (${k}, ${rid}, ${provider}, ${fb}, ${i}, ${o}, ${120}, ${200}, now() - ${
      raw(`INTERVAL '${ago}'`)
    })`);
  await usage(ka, "r1", "anthropic", false, 100, 50, "5 minutes");
  await usage(ka, "r2", "bedrock", true, 10, 5, "10 minutes");
  await usage(kb, "r3", "anthropic", false, 1000, 500, "2 hours");
  await usage(kb, "r4", "anthropic", false, 1, 1, "3 days");

  const recent = await db.query<Record<string, unknown>>(raw(VIEW_RECENT_USAGE));
  assert.deepEqual(recent.map((r) => [r.email, r.provider, r.is_fallback, r.input_tokens]), [
    ["alice@example.com", "anthropic", false, 100],
    ["alice@example.com", "bedrock", true, 10],
  ]);
  assert.ok(recent[0].created_at instanceof Date);

  const top = await db.query<Record<string, unknown>>(raw(HIGH_USAGE_USERS));
  assert.deepEqual(top.map((r) => [r.email, Number(r.request_count), Number(r.total_tokens)]), [
    ["bob@example.com", 1, 1500],
    ["alice@example.com", 2, 165],
  ]);

  const rate = await db.query<Record<string, unknown>>(raw(FALLBACK_RATE));
  const byKey = Object.fromEntries(
    rate.map((r) => [`${r.provider}/${r.is_fallback}`, Number(r.request_count)]),
  );
  assert.deepEqual(byKey, { "anthropic/false": 2, "bedrock/true": 1 });
});

dbTest("schema keeps the seed's foreign-key rules", async (db) => {
  const [u] = await db.query<{ id: string }>(
    sql`INSERT INTO users (email) VALUES (${"c@example.com"}) RETURNING id`,
  );
  const [k] = await db.query<{ id: string }>(
    sql`INSERT INTO access_keys (user_id, key_hash, key_prefix) VALUES (${u.id}, ${"h"}, ${"ak_x"}) RETURNING id`,
  );
  await db.query(
    sql`INSERT INTO bedrock_keys (access_key_id, credential_kind, encrypted_secret_key, encryption_scheme,
    encryption_iv, key_tail) VALUES (${k.id}, ${"iam"}, ${new Uint8Array([1])}, ${"local"}, ${new Uint8Array([
      2,
    ])}, ${"ABCD"})`,
  );
  await db.query(sql`INSERT INTO token_usages (access_key_id, request_id, provider, latency_ms, status_code)
    VALUES (${k.id}, ${"r"}, ${"anthropic"}, ${1}, ${200})`);
  await db.query(sql`DELETE FROM access_keys WHERE id = ${k.id}`);
  assert.equal((await db.query(sql`SELECT 1 FROM bedrock_keys`)).length, 0, "bedrock_keys cascade");
  const [usage] = await db.query<{ access_key_id: string | null }>(
    sql`SELECT access_key_id FROM token_usages`,
  );
  assert.equal(usage.access_key_id, null, "token_usages set null");
  await db.query(
    sql`INSERT INTO access_keys (user_id, key_hash, key_prefix) VALUES (${u.id}, ${"h2"}, ${"ak_y"})`,
  );
  await db.query(sql`DELETE FROM users WHERE id = ${u.id}`);
  assert.equal((await db.query(sql`SELECT 1 FROM access_keys`)).length, 0, "access_keys cascade");
});
