/**
 * Carries cluster events between replicas over PostgreSQL `LISTEN/NOTIFY`. Each replica tags what it sends with
 * its own id and ignores its own echoes; after the listening connection was lost and re-established, caches are
 * dropped wholesale because notifications sent meanwhile were missed.
 *
 * On the embedded database (one process) the same code path runs in-process.
 *
 * @example
 * ```ts
 * const stop = await attachNotifyTransport({ db, bus, log, onResync: () => resolverCache.clear() });
 * ```
 */
import type { Db } from "./db.ts";
import { sql } from "./sql.ts";
import type { ClusterEvent, EventBus } from "../events.ts";
import type { Logger } from "../log.ts";

/** The NOTIFY channel the replicas share. */
export const EVENTS_CHANNEL = "claude_code_proxy_events";

/** Connects the bus to the database; resolves to a function that detaches it. */
export async function attachNotifyTransport(deps: {
  db: Db;
  bus: EventBus;
  log: Logger;
  onResync?: () => void;
  replicaId?: string;
}): Promise<() => Promise<void>> {
  const replica = deps.replicaId ?? crypto.randomUUID();
  const unlisten = await deps.db.listen(
    EVENTS_CHANNEL,
    (payload) => {
      let message: { from: string; event: ClusterEvent };
      try {
        message = JSON.parse(payload);
      } catch {
        return;
      }
      if (message.from === replica) return;
      deps.bus.deliverRemote(message.event);
    },
    () => {
      deps.log.warn("event listener reconnected; dropping caches that may have missed invalidations");
      deps.onResync?.();
    },
  );
  deps.bus.attachTransport((event) => {
    const payload = JSON.stringify({ from: replica, event });
    deps.db.query(sql`SELECT pg_notify(${EVENTS_CHANNEL}, ${payload})`).catch((e) => {
      // A replica that misses this event falls back to its cache TTL; nothing else depends on delivery.
      deps.log.warn("could not broadcast a cluster event", { type: event.type, error: (e as Error).message });
    });
  });
  return unlisten;
}
