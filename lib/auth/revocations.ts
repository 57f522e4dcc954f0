/**
 * Signed-out admin sessions, refused on every replica until their tokens expire. Session tokens are stateless
 * JWTs, so signing out must be remembered: in `revoked_sessions` (read at start and after a missed broadcast) and
 * in memory here, checked on every console and API request without a database read.
 *
 * @example
 * ```ts
 * const revoked = createSessionRevocations({ db, bus });
 * await revoked.load();
 * await revoked.revoke(session.sid, session.expiresAt);
 * revoked.has(session.sid); // true on this and, within the broadcast delay, every other replica
 * ```
 */
import type { Db } from "../db/db.ts";
import { insertRevokedSession, listRevokedSessions } from "../db/sessions.ts";
import type { EventBus } from "../events.ts";

/** The revocation list. */
export interface SessionRevocations {
  has(sid: string): boolean;
  /** Entries held (their tokens not yet expired, give or take the last sign-out). */
  readonly size: number;
  /**
   * Refuses the session from now on, here at once and on other replicas through the bus. Rejects when the
   * sign-out could not be stored (database down): it holds on this replica then, and is stored and broadcast by
   * the next {@link load} that reaches the database.
   */
  revoke(sid: string, expiresAt: Date): Promise<void>;
  /**
   * Stores sign-outs that could not be stored before, then reads the list from the database (at start, and after
   * the database or the broadcast connection came back).
   */
  load(): Promise<void>;
  /** Sign-outs made here that are not stored yet (their tokens not expired). */
  readonly unstored: number;
}

/** Creates the list; it subscribes to the bus for other replicas' sign-outs. */
export function createSessionRevocations(
  deps: { db: Db; bus: EventBus; now?: () => number },
): SessionRevocations {
  const now = deps.now ?? Date.now;
  const revoked = new Map<string, number>(); // sid → token expiry (epoch ms)
  const add = (sid: string, expiresAt: number) => {
    const t = now();
    if (expiresAt <= t) return;
    // Entries are only needed until their token expires; drop those as new ones come, so the map stays small.
    for (const [old, exp] of revoked) if (exp <= t) revoked.delete(old);
    revoked.set(sid, expiresAt);
  };
  deps.bus.subscribe((e) => {
    if (e.type === "session_revoked") add(e.sid, e.expiresAt);
  });
  // Signed out here while the database was down: stored (and broadcast, which also needs the database) later.
  const unstored = new Map<string, number>();
  const storeUnstored = async () => {
    for (const [sid, expiresAt] of [...unstored]) {
      if (expiresAt > now()) {
        await insertRevokedSession(deps.db, sid, new Date(expiresAt));
        deps.bus.publish({ type: "session_revoked", sid, expiresAt });
      }
      unstored.delete(sid);
    }
  };
  return {
    get size() {
      return revoked.size;
    },
    get unstored() {
      for (const [sid, expiresAt] of unstored) if (expiresAt <= now()) unstored.delete(sid);
      return unstored.size;
    },
    has(sid) {
      const expiresAt = revoked.get(sid);
      if (expiresAt === undefined) return false;
      if (expiresAt <= now()) revoked.delete(sid); // the token itself has expired by now
      return true;
    },
    async revoke(sid, expiresAt) {
      // Memory and broadcast first: a store that fails must not leave the session working where it can be
      // refused.
      add(sid, expiresAt.getTime());
      deps.bus.publish({ type: "session_revoked", sid, expiresAt: expiresAt.getTime() });
      try {
        await insertRevokedSession(deps.db, sid, expiresAt);
      } catch (e) {
        unstored.set(sid, expiresAt.getTime());
        throw e;
      }
    },
    async load() {
      await storeUnstored();
      for (const row of await listRevokedSessions(deps.db)) add(row.sid, new Date(row.expires_at).getTime());
    },
  };
}
