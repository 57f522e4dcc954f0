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
  const details = JSON.stringify(e.details ?? {});
  // Bound as text: postgres.js would serialise a string bound as jsonb into a JSON string.
  await q.query(sql`
    INSERT INTO audit_events (actor, action, target_type, target_id, details, client_address)
    VALUES (${e.actor}, ${e.action}, ${e.targetType}, ${e.targetId}, ${details}::text::jsonb, ${e.clientAddress})`);
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
  return { items: items.map((row) => ({ ...row, details: detailsObject(row.details) })), total };
}

/**
 * Earlier versions wrote `details` on PostgreSQL as a JSON string holding the object's JSON text (postgres.js
 * encoded the already encoded text again). The table is append-only, so those rows are read back as the object
 * they meant rather than rewritten; text that is not a JSON object is kept, under `text`.
 */
function detailsObject(details: unknown): Record<string, unknown> {
  if (typeof details !== "string") return (details ?? {}) as Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(details);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch { /* not JSON: kept as text below */ }
  return { text: details };
}
