/**
 * Cluster events: cache invalidations and circuit-breaker transitions that every replica must see.
 *
 * The in-process bus delivers synchronously to local subscribers; a PostgreSQL LISTEN/NOTIFY transport (see
 * `lib/db/notify.ts`) can be attached so other replicas receive the same events. Handlers must be idempotent:
 * a replica also receives its own events back through the transport.
 *
 * @example
 * ```ts
 * const bus = createEventBus();
 * bus.subscribe((e) => { if (e.type === "key_changed") cache.forget(e.accessKeyId); });
 * bus.publish({ type: "key_changed", accessKeyId: id });
 * ```
 */

/** Everything that is broadcast. */
export type ClusterEvent =
  | { type: "key_changed"; accessKeyId: string }
  | { type: "user_changed"; userId: string }
  | { type: "bedrock_credentials_changed"; accessKeyId: string }
  | { type: "session_revoked"; sid: string; expiresAt: number }
  /**
   * Admin sign-in throttle subjects (`ip:…`, `user:…`): an attempt, counted as failed before its password check;
   * one taken back (never checked); or a success, which clears them.
   */
  | { type: "sign_in_failed" | "sign_in_forgiven" | "sign_in_succeeded"; subjects: string[] }
  /**
   * Access-key guessing from one address (its throttle subject): a key the database did not know, or a lookup
   * let through at the throttle's pace.
   */
  | { type: "key_guess"; outcome: "failed" | "paced"; subject: string }
  | {
    type: "circuit";
    accessKeyId: string;
    state: "closed" | "open" | "half_open";
    reopensAt: number | null;
    /** Half-open only: false when the probing replica let its probe go without a verdict (others may probe). */
    probing?: boolean;
  };

/** A publish/subscribe bus. */
export interface EventBus {
  publish(event: ClusterEvent): void;
  subscribe(handler: (event: ClusterEvent, origin: "local" | "remote") => void): () => void;
  /** Delivers an event that came from another replica (called by the transport). */
  deliverRemote(event: ClusterEvent): void;
  /** Attaches a transport that carries published events to other replicas. */
  attachTransport(send: (event: ClusterEvent) => void): void;
}

/** Creates an in-process bus. */
export function createEventBus(): EventBus {
  const handlers = new Set<(event: ClusterEvent, origin: "local" | "remote") => void>();
  let transport: ((event: ClusterEvent) => void) | null = null;
  const deliver = (event: ClusterEvent, origin: "local" | "remote") => {
    for (const h of handlers) {
      try {
        h(event, origin);
      } catch {
        // One failing subscriber must not stop the others (or the admin action that published).
      }
    }
  };
  return {
    publish(event) {
      deliver(event, "local");
      transport?.(event);
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    deliverRemote(event) {
      deliver(event, "remote");
    },
    attachTransport(send) {
      transport = send;
    },
  };
}
