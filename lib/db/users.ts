/**
 * SQL for the `users` aggregate. One function per use case; every value bound.
 */
import type { Queryable } from "./db.ts";
import { join, sql, type SqlFragment } from "./sql.ts";

/** A user row as the rest of the program sees it. */
export interface UserRow {
  id: string;
  email: string;
  name: string | null;
  is_active: boolean;
  monthly_budget_usd: number | null;
  routing_strategy: "plan_first" | "bedrock_only";
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

const USER_COLUMNS =
  sql`id, email, name, is_active, monthly_budget_usd, routing_strategy, created_at, updated_at,
  deleted_at`;

/** Inserts a user; throws the driver's unique-violation error (code 23505) on a duplicate live email. */
export async function insertUser(
  q: Queryable,
  u: { email: string; name: string | null; monthlyBudgetUsd: number | null; routingStrategy: string },
): Promise<UserRow> {
  const rows = await q.query<UserRow>(sql`
    INSERT INTO users (email, name, monthly_budget_usd, routing_strategy)
    VALUES (${u.email}, ${u.name}, ${u.monthlyBudgetUsd}, ${u.routingStrategy})
    RETURNING ${USER_COLUMNS}`);
  return rows[0];
}

/** A live (not deleted) user by id, or null. */
export async function findUser(q: Queryable, id: string): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(
    sql`SELECT ${USER_COLUMNS} FROM users WHERE id = ${id} AND deleted_at IS NULL`,
  );
  return rows[0] ?? null;
}

/**
 * A user by id, deleted or not, or null: a deleted user's usage history stays, and its page with it.
 */
export async function findUserIncludingDeleted(q: Queryable, id: string): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(sql`SELECT ${USER_COLUMNS} FROM users WHERE id = ${id}`);
  return rows[0] ?? null;
}

/**
 * Users whose email or name contains `text` (any case), deleted ones included since their usage is kept, for
 * picking one to filter by: an exact email first (a live user before deleted ones that had the same email), then
 * by email. At most `limit` rows, and how many match in all.
 */
export async function findUsersByText(
  q: Queryable,
  text: string,
  limit: number,
): Promise<{ items: UserRow[]; total: number }> {
  const like = likePattern(text);
  const items = await q.query<UserRow>(sql`
    SELECT ${USER_COLUMNS} FROM users
    WHERE email ILIKE ${like} OR name ILIKE ${like}
    ORDER BY lower(email) = lower(${text}) DESC, deleted_at IS NULL DESC, email, created_at DESC, id
    LIMIT ${limit}`);
  const [{ total }] = await q.query<{ total: number }>(
    sql`SELECT count(*) AS total FROM users WHERE email ILIKE ${like} OR name ILIKE ${like}`,
  );
  return { items, total: Number(total) };
}

/** An ILIKE pattern matching `text` anywhere, its wildcards and escapes taken literally. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Users page with an optional search over email and name, and the total count for paging. */
export async function listUsers(
  q: Queryable,
  opts: { search?: string; limit: number; offset: number; status?: "active" | "inactive" },
): Promise<{ items: Array<UserRow & { key_count: number }>; total: number }> {
  const conds: SqlFragment[] = [sql`u.deleted_at IS NULL`];
  if (opts.search) {
    const like = likePattern(opts.search);
    conds.push(sql`(u.email ILIKE ${like} OR u.name ILIKE ${like})`);
  }
  if (opts.status === "active") conds.push(sql`u.is_active`);
  if (opts.status === "inactive") conds.push(sql`NOT u.is_active`);
  const where = join(conds, sql` AND `);
  const items = await q.query<UserRow & { key_count: number }>(sql`
    SELECT u.id, u.email, u.name, u.is_active, u.monthly_budget_usd, u.routing_strategy, u.created_at, u.updated_at,
      u.deleted_at,
      -- Keys that still work: a rotated key past its grace is as dead as a revoked one.
      (SELECT count(*) FROM access_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL AND k.deleted_at IS NULL
        AND k.is_active AND (k.expires_at IS NULL OR k.expires_at > now())) AS key_count
    FROM users u WHERE ${where}
    ORDER BY u.created_at DESC, u.id
    LIMIT ${opts.limit} OFFSET ${opts.offset}`);
  const [{ total }] = await q.query<{ total: number }>(
    sql`SELECT count(*) AS total FROM users u WHERE ${where}`,
  );
  return { items, total };
}

/** Applies the given changes to a live user; returns the updated row or null when there is none. */
export async function updateUser(
  q: Queryable,
  id: string,
  changes: {
    name?: string | null;
    monthlyBudgetUsd?: number | null;
    routingStrategy?: string;
    isActive?: boolean;
  },
): Promise<UserRow | null> {
  const sets: SqlFragment[] = [sql`updated_at = now()`];
  if (changes.name !== undefined) sets.push(sql`name = ${changes.name}`);
  if (changes.monthlyBudgetUsd !== undefined) {
    sets.push(sql`monthly_budget_usd = ${changes.monthlyBudgetUsd}`);
  }
  if (changes.routingStrategy !== undefined) sets.push(sql`routing_strategy = ${changes.routingStrategy}`);
  if (changes.isActive !== undefined) sets.push(sql`is_active = ${changes.isActive}`);
  const rows = await q.query<UserRow>(sql`
    UPDATE users SET ${
    join(sets, sql`, `)
  } WHERE id = ${id} AND deleted_at IS NULL RETURNING ${USER_COLUMNS}`);
  return rows[0] ?? null;
}

/** Soft-deletes a user and revokes its keys in one statement pair; false when there was no live user. */
export async function softDeleteUser(q: Queryable, id: string): Promise<boolean> {
  const rows = await q.query(
    sql`UPDATE users SET deleted_at = now(), updated_at = now(), is_active = false
        WHERE id = ${id} AND deleted_at IS NULL RETURNING id`,
  );
  if (rows.length === 0) return false;
  await q.query(sql`UPDATE access_keys SET revoked_at = coalesce(revoked_at, now()), is_active = false
    WHERE user_id = ${id}`);
  return true;
}
