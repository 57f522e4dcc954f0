/**
 * SQL for the `audit_events` log of admin actions.
 */
import type { Queryable } from "./db.ts";
import { sql } from "./sql.ts";

/** One admin action. */
export interface AuditEventRow {
  id: number;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  details: Record<string, unknown>;
  client_address: string | null;
  created_at: Date;
}

/** Appends an audit event. `details` must hold no secret. */
export async function insertAuditEvent(
  q: Queryable,
  e: {
    actor: string;
    action: string;
    targetType: string | null;
    targetId: string | null;
    details?: Record<string, unknown>;
    clientAddress: string | null;
  },
): Promise<void> {
  await q.query(sql`
    INSERT INTO audit_events (actor, action, target_type, target_id, details, client_address)
    VALUES (${e.actor}, ${e.action}, ${e.targetType}, ${e.targetId}, ${
    JSON.stringify(e.details ?? {})
  }::jsonb,
      ${e.clientAddress})`);
}

/** Newest events first, paged. */
export async function listAuditEvents(
  q: Queryable,
  opts: { limit: number; offset: number },
): Promise<{ items: AuditEventRow[]; total: number }> {
  const items = await q.query<AuditEventRow>(sql`
    SELECT id, actor, action, target_type, target_id, details, client_address, created_at
    FROM audit_events ORDER BY created_at DESC, id DESC LIMIT ${opts.limit} OFFSET ${opts.offset}`);
  const [{ total }] = await q.query<{ total: number }>(sql`SELECT count(*) AS total FROM audit_events`);
  return { items, total };
}
