/**
 * SQL for `revoked_sessions`: admin sessions signed out before their tokens expire.
 */
import type { Db, Queryable } from "./db.ts";
import { sql } from "./sql.ts";

/** One revoked session. */
export interface RevokedSessionRow {
  sid: string;
  expires_at: Date;
}

/** Records a revoked session (idempotent) and drops the rows that have expired. */
export async function insertRevokedSession(db: Db, sid: string, expiresAt: Date): Promise<void> {
  await db.begin(async (tx) => {
    await tx.query(sql`
      INSERT INTO revoked_sessions (sid, expires_at) VALUES (${sid}, ${expiresAt})
      ON CONFLICT (sid) DO NOTHING`);
    await tx.query(sql`DELETE FROM revoked_sessions WHERE expires_at < now()`);
  });
}

/** The revoked sessions whose tokens have not expired yet. */
export async function listRevokedSessions(q: Queryable): Promise<RevokedSessionRow[]> {
  return await q.query<RevokedSessionRow>(
    sql`SELECT sid, expires_at FROM revoked_sessions WHERE expires_at >= now()`,
  );
}
