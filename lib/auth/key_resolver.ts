/**
 * The proxy's access-key lookup: raw key → key, user and status, through an in-memory cache
 * (`PROXY_ACCESS_KEY_CACHE_TTL`). Unknown keys are remembered briefly too, so a flood of guesses does not reach
 * the database. Revocations, rotations and user changes invalidate entries at once through the event bus.
 *
 * During a database outage an expired entry is served stale rather than refusing a valid key: a database
 * failure must never turn into a 401.
 *
 * @example
 * ```ts
 * const r = createKeyResolver({ db, hasher, ttlSeconds: 60, bus, now: Date.now });
 * const result = await r.resolve("ak_…");
 * if (result.status === "ok") console.log(result.key.userId);
 * ```
 */
import type { Db } from "../db/db.ts";
import { type KeyLookupRow, lookupKeyByHash } from "../db/access_keys.ts";
import type { KeyHasher } from "./access_key.ts";
import { isWellFormedKey } from "./access_key.ts";
import type { EventBus } from "../events.ts";
import { TimedOut, within } from "../within.ts";

/** What the proxy knows about an authorised key. */
export interface ResolvedKey {
  id: string;
  userId: string;
  keyPrefix: string;
  routingStrategy: "plan_first" | "bedrock_only";
  monthlyBudgetUsd: number | null;
  hasBedrockCredentials: boolean;
  /** End of the rotation grace, after which the key is refused; null when not rotated. */
  expiresAt: number | null;
}

/** The outcome of a lookup. */
export type Resolution =
  | { status: "ok"; key: ResolvedKey }
  | { status: "unknown" }
  | { status: "revoked" }
  | { status: "expired" }
  | { status: "user_inactive" }
  | { status: "unavailable" }; // database unreachable and nothing cached

interface Entry {
  row: KeyLookupRow | null;
  fetchedAt: number;
  /**
   * Dropped by a change to the key or its user: read again on its next use, and never served in an outage (the
   * row predates the change). Kept rather than deleted so that the key still counts as seen, not as a guess.
   */
  invalidated?: true;
}

/** The resolver with its invalidation hooks. */
export interface KeyResolver {
  resolve(rawKey: string): Promise<Resolution>;
  /**
   * Whether resolving this key would ask the database about a key not seen to exist: well formed, not cached as
   * existing (fresh or stale), not remembered as unknown just now, not being looked up already. Only such
   * lookups are guesses worth throttling: the others cost the database nothing more.
   */
  isUnseen(rawKey: string): boolean;
  /** Drops cached entries of an access key / of a user's keys. */
  forgetKey(accessKeyId: string): void;
  forgetUser(userId: string): void;
  /** Drops everything. */
  clear(): void;
  /**
   * Marks every entry expired (after invalidations may have been missed): each key is looked up again on its
   * next use, but still served from what was known if the database is down then.
   */
  expireAll(): void;
  readonly size: number;
}

const NEGATIVE_TTL_MS = 10_000;
/**
 * How long a request waits for the re-read of a key it knows (past its TTL) before what it knew stands in. A
 * database that stalls rather than refuses (a failover, a partition: no reset, no error) would otherwise hold
 * every request until the connection gives up, minutes later.
 */
const STALE_WAIT_MS = 1_000;
/** How long a request waits for the first read of a key: then 503, retryable, rather than a request that hangs. */
const LOOKUP_WAIT_MS = 10_000;
/** After a re-read overran its wait, known keys are served at once for this long (their re-read goes on). */
const STALL_GRACE_MS = 5_000;

/** Creates a resolver; it subscribes to the bus for invalidations. */
export function createKeyResolver(deps: {
  db: Db;
  hasher: KeyHasher;
  ttlSeconds: number;
  bus: EventBus;
  now?: () => number;
  maxEntries?: number;
  /** Waits for a stalled database (tests shorten them). */
  staleWaitMs?: number;
  lookupWaitMs?: number;
}): KeyResolver {
  const now = deps.now ?? Date.now;
  const staleWaitMs = deps.staleWaitMs ?? STALE_WAIT_MS;
  const lookupWaitMs = deps.lookupWaitMs ?? LOOKUP_WAIT_MS;
  // Real time, not `now`: the grace measures the database's stall, not the TTL clock tests move.
  let stalledUntil = 0;
  const ttlMs = deps.ttlSeconds * 1000;
  const maxEntries = deps.maxEntries ?? 50_000;
  // Keyed by the raw key: a hit costs no HMAC. The maps live only in this process's memory. Keys that exist and
  // keys that do not are kept apart, each with its own bound: a flood of guesses must not push valid keys out,
  // or a database outage after it would turn them away (503) instead of serving them from here.
  const cache = new Map<string, Entry>();
  const misses = new Map<string, number>(); // unknown key → when the database said so
  const maxMisses = Math.max(1, Math.min(maxEntries, 10_000));
  const inflight = new Map<string, Promise<Entry>>();

  // Bumped by every invalidation. A lookup may read a row just before a revocation commits and return just
  // after its event dropped the cache: without this counter it would store the old row and the revoked key would
  // keep working for the whole TTL. Any invalidation counts, whichever key it names: the lookup does not know its
  // key's id until the row arrives, and invalidations are rare enough that an extra read costs nothing.
  let generation = 0;
  const forget = (match: (row: KeyLookupRow) => boolean) => {
    generation++;
    for (const [k, e] of cache) {
      if (e.row && match(e.row)) cache.set(k, { row: e.row, fetchedAt: -Infinity, invalidated: true });
    }
  };

  deps.bus.subscribe((event) => {
    if (event.type === "key_changed" || event.type === "bedrock_credentials_changed") {
      forget((r) => r.id === event.accessKeyId);
    } else if (event.type === "user_changed") forget((r) => r.user_id === event.userId);
  });

  const fetch = (rawKey: string): Promise<Entry> => {
    let p = inflight.get(rawKey);
    if (!p) {
      // Concurrent requests with the same uncached key share one database read.
      p = (async () => {
        const hash = await deps.hasher.hash(rawKey);
        let started = generation;
        let row = await lookupKeyByHash(deps.db, hash);
        if (generation !== started) {
          // Invalidated while reading: the row may predate the change. Read once more; if that is overtaken
          // too, answer with it but keep it out of the cache so the next request reads again.
          started = generation;
          row = await lookupKeyByHash(deps.db, hash);
        }
        stalledUntil = 0; // the database answers again
        const entry = { row, fetchedAt: now() };
        if (generation !== started) return entry;
        cache.delete(rawKey);
        misses.delete(rawKey);
        const [map, bound] = row ? [cache, maxEntries] : [misses, maxMisses];
        if (row) cache.set(rawKey, entry);
        else misses.set(rawKey, entry.fetchedAt);
        if (map.size > bound) {
          const oldest = map.keys().next().value;
          if (oldest !== undefined) map.delete(oldest);
        }
        return entry;
      })().finally(() => inflight.delete(rawKey));
      inflight.set(rawKey, p);
    }
    return p;
  };

  return {
    get size() {
      return cache.size + misses.size;
    },
    forgetKey: (id) => forget((r) => r.id === id),
    forgetUser: (id) => forget((r) => r.user_id === id),
    clear() {
      generation++;
      cache.clear();
      misses.clear();
    },
    expireAll() {
      generation++;
      for (const entry of cache.values()) entry.fetchedAt = -Infinity;
      for (const k of misses.keys()) misses.set(k, -Infinity);
    },
    isUnseen(rawKey) {
      if (!isWellFormedKey(rawKey) || cache.get(rawKey)?.row || inflight.has(rawKey)) return false;
      const missedAt = misses.get(rawKey);
      return missedAt === undefined || now() - missedAt >= Math.min(ttlMs, NEGATIVE_TTL_MS);
    },
    async resolve(rawKey) {
      if (!isWellFormedKey(rawKey)) return { status: "unknown" };
      let entry = cache.get(rawKey);
      const t = now();
      let missedAt: number | undefined;
      if (entry) {
        if (t - entry.fetchedAt < ttlMs) {
          // Least recently used goes first when the map is full: move this one to the end.
          cache.delete(rawKey);
          cache.set(rawKey, entry);
          return judge(entry.row, t);
        }
      } else {
        missedAt = misses.get(rawKey);
        if (missedAt !== undefined && t - missedAt < Math.min(ttlMs, NEGATIVE_TTL_MS)) {
          return { status: "unknown" };
        }
      }
      const knew = entry !== undefined && !entry.invalidated;
      if (knew && performance.now() < stalledUntil) {
        // The database stalled a moment ago: serve what we knew now, and let the re-read refresh it if it can.
        fetch(rawKey).catch(() => {});
        return judge(entry!.row, t);
      }
      try {
        entry = await within(knew ? staleWaitMs : lookupWaitMs, fetch(rawKey), "key lookup");
      } catch (e) {
        // A refusal is quick to learn again; a stall is not, so for a while known keys do not wait for it.
        if (knew && e instanceof TimedOut) stalledUntil = performance.now() + STALL_GRACE_MS;
        // Database down: keep serving what we knew, unless a change since has made it wrong. The entry is read
        // again: a change during the failed read replaced it (marked invalidated) or a clear() removed it.
        const known = cache.get(rawKey);
        if (known && !known.invalidated) return judge(known.row, now());
        return missedAt !== undefined ? { status: "unknown" } : { status: "unavailable" };
      }
      return judge(entry.row, now());
    },
  };
}

function judge(row: KeyLookupRow | null, now: number): Resolution {
  if (!row) return { status: "unknown" };
  // The user first: deleting a user revokes their keys too, and its holder should learn why (403), not only
  // that the key stopped working.
  if (row.user_deleted_at || !row.user_is_active) return { status: "user_inactive" };
  if (row.revoked_at || row.deleted_at || !row.is_active) return { status: "revoked" };
  const expiresAt = row.expires_at ? row.expires_at.getTime() : null;
  if (expiresAt !== null && expiresAt <= now) return { status: "expired" };
  return {
    status: "ok",
    key: {
      id: row.id,
      userId: row.user_id,
      keyPrefix: row.key_prefix,
      routingStrategy: row.routing_strategy,
      monthlyBudgetUsd: row.monthly_budget_usd,
      hasBedrockCredentials: row.has_bedrock_credentials,
      expiresAt,
    },
  };
}
