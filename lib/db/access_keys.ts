/**
 * SQL for the `access_keys` aggregate.
 */
import type { Queryable } from "./db.ts";
import { sql } from "./sql.ts";

/** An access key row (never holds the raw key, only its HMAC). */
export interface AccessKeyRow {
  id: string;
  user_id: string;
  key_prefix: string;
  name: string | null;
  is_active: boolean;
  created_at: Date;
  revoked_at: Date | null;
  expires_at: Date | null;
  rotated_to: string | null;
  last_used_at: Date | null;
  deleted_at: Date | null;
  has_bedrock_credentials: boolean;
}

/** What the proxy needs to authorise a request, read in one query by key hash. */
export interface KeyLookupRow {
  id: string;
  user_id: string;
  key_prefix: string;
  is_active: boolean;
  revoked_at: Date | null;
  expires_at: Date | null;
  deleted_at: Date | null;
  user_is_active: boolean;
  user_deleted_at: Date | null;
  routing_strategy: "plan_first" | "bedrock_only";
  monthly_budget_usd: number | null;
  has_bedrock_credentials: boolean;
}

const KEY_COLUMNS = sql`k.id, k.user_id, k.key_prefix, k.name, k.is_active, k.created_at, k.revoked_at,
  k.expires_at, k.rotated_to, k.last_used_at, k.deleted_at,
  EXISTS (SELECT 1 FROM bedrock_keys b WHERE b.access_key_id = k.id) AS has_bedrock_credentials`;

/** Inserts a key for a user. */
export async function insertAccessKey(
  q: Queryable,
  k: { userId: string; keyHash: string; keyPrefix: string; name: string | null },
): Promise<AccessKeyRow | null> {
  // Run in a transaction: the share lock on the user holds a concurrent delete back until this key is committed
  // (its revocation then sees it), or, taken after the delete, finds the user gone. The foreign key's own lock
  // does not conflict with the delete's update, which left keys issued meanwhile active on a deleted user.
  const live = await q.query(
    sql`SELECT 1 FROM users WHERE id = ${k.userId} AND deleted_at IS NULL FOR SHARE`,
  );
  if (live.length === 0) return null;
  const [row] = await q.query<{ id: string }>(sql`
    INSERT INTO access_keys (user_id, key_hash, key_prefix, name)
    VALUES (${k.userId}, ${k.keyHash}, ${k.keyPrefix}, ${k.name}) RETURNING id`);
  return (await findAccessKey(q, row.id))!;
}

/** A key by id (any status), or null. */
export async function findAccessKey(q: Queryable, id: string): Promise<AccessKeyRow | null> {
  const rows = await q.query<AccessKeyRow>(sql`SELECT ${KEY_COLUMNS} FROM access_keys k WHERE k.id = ${id}`);
  return rows[0] ?? null;
}

/** All keys of a user, newest first. */
export async function listAccessKeysOfUser(q: Queryable, userId: string): Promise<AccessKeyRow[]> {
  return await q.query<AccessKeyRow>(
    sql`SELECT ${KEY_COLUMNS} FROM access_keys k WHERE k.user_id = ${userId} ORDER BY k.created_at DESC, k.id`,
  );
}

/** The proxy's lookup: key and user state by HMAC, or null. */
export async function lookupKeyByHash(q: Queryable, keyHash: string): Promise<KeyLookupRow | null> {
  const rows = await q.query<KeyLookupRow>(sql`
    SELECT k.id, k.user_id, k.key_prefix, k.is_active, k.revoked_at, k.expires_at, k.deleted_at,
      u.is_active AS user_is_active, u.deleted_at AS user_deleted_at, u.routing_strategy, u.monthly_budget_usd,
      EXISTS (SELECT 1 FROM bedrock_keys b WHERE b.access_key_id = k.id) AS has_bedrock_credentials
    FROM access_keys k JOIN users u ON u.id = k.user_id
    WHERE k.key_hash = ${keyHash}`);
  return rows[0] ?? null;
}

/**
 * Revokes a key; returns the row and whether this call revoked it, or null when it does not exist. Revoking
 * twice keeps the first time.
 */
export async function revokeAccessKey(
  q: Queryable,
  id: string,
): Promise<{ row: AccessKeyRow; changed: boolean } | null> {
  const rows = await q.query<{ id: string }>(sql`
    UPDATE access_keys SET revoked_at = coalesce(revoked_at, now()), is_active = false
    WHERE id = ${id} AND (revoked_at IS NULL OR is_active) RETURNING id`);
  const row = await findAccessKey(q, id);
  return row ? { row, changed: rows.length > 0 } : null;
}

/**
 * Marks `oldId` as rotated to `newId`: it keeps working until `expiresAt`. Only a live key that is not already
 * rotating is marked, so two concurrent rotations cannot both succeed; returns the stored expiry, or null when
 * the key was not marked (rotated, revoked or deleted meanwhile).
 */
export async function markRotated(
  q: Queryable,
  oldId: string,
  newId: string,
  expiresAt: Date,
): Promise<Date | null> {
  const rows = await q.query<{ expires_at: Date }>(sql`UPDATE access_keys
    SET rotated_to = ${newId}, expires_at = ${expiresAt}
    WHERE id = ${oldId} AND rotated_to IS NULL AND expires_at IS NULL AND revoked_at IS NULL AND is_active
      AND deleted_at IS NULL
    RETURNING expires_at`);
  return rows[0]?.expires_at ?? null;
}

/**
 * Deletes a key outright (its Bedrock credentials go with it). Only for a key issued moments ago whose raw value
 * was never shown, such as the loser of two concurrent rotations; keys anyone could hold are revoked instead.
 */
export async function deleteUnissuedAccessKey(q: Queryable, id: string): Promise<void> {
  await q.query(sql`DELETE FROM access_keys WHERE id = ${id}`);
}

/** Sets `last_used_at` for many keys at once (called by the usage recorder's flush). */
export async function touchKeys(q: Queryable, uses: Array<{ id: string; at: Date }>): Promise<void> {
  if (uses.length === 0) return;
  await q.query(sql`
    UPDATE access_keys k SET last_used_at = greatest(coalesce(k.last_used_at, t.at), t.at)
    FROM (SELECT unnest(${uses.map((u) => u.id)}::uuid[]) AS id, unnest(${
    uses.map((u) => u.at.toISOString())
  }::timestamptz[]) AS at) t
    WHERE k.id = t.id`);
}
