/**
 * Database fixtures for tests: every database test runs on PGlite and, when `PROXY_TEST_DATABASE_URL` is set, on
 * PostgreSQL too. PGlite cases start from a copy of one migrated database (a fresh one takes ~4 s, a copy ~0.5 s);
 * PostgreSQL cases get a fresh database cloned from a migrated template.
 */
import { openPglite } from "../../lib/db/pglite.ts";
import { openPostgres } from "../../lib/db/postgres.ts";
import { checksum, migrate, readMigrations } from "../../lib/db/migrate.ts";
import type { Db, Queryable } from "../../lib/db/db.ts";
import { sql } from "../../lib/db/sql.ts";

const MIGRATIONS = new URL("../../migrations/", import.meta.url);
const CACHE_DIR = new URL("../../.data/test-cache/", import.meta.url).pathname;

/** The backends a database test runs on here. */
export type Backend = "pglite" | "postgres";

/** Backends available: PGlite always, PostgreSQL when `PROXY_TEST_DATABASE_URL` is set. */
export function backends(): Backend[] {
  return Deno.env.get("PROXY_TEST_DATABASE_URL") ? ["pglite", "postgres"] : ["pglite"];
}

async function migrationsKey(): Promise<string> {
  const files = await readMigrations(MIGRATIONS);
  return (await checksum(files.map((f) => f.checksum).join(","))).slice(0, 16);
}

let templatePromise: Promise<Blob> | null = null;

/** A tarball of a freshly migrated PGlite database, cached on disk across test workers. */
function pgliteTemplate(): Promise<Blob> {
  templatePromise ??= (async () => {
    const key = await migrationsKey();
    const path = `${CACHE_DIR}pglite-${key}.tar.gz`;
    try {
      return new Blob([await Deno.readFile(path)]);
    } catch {
      // build below
    }
    const db = await openPglite();
    await migrate(db, await readMigrations(MIGRATIONS));
    const dump = await db.raw.dumpDataDir("gzip");
    await db.close();
    await Deno.mkdir(CACHE_DIR, { recursive: true });
    const tmp = `${path}.${crypto.randomUUID()}`;
    await Deno.writeFile(tmp, new Uint8Array(await dump.arrayBuffer()));
    await Deno.rename(tmp, path); // atomic: parallel workers never read half a file
    return dump;
  })();
  return templatePromise;
}

let pgTemplatePromise: Promise<string> | null = null;

/** Name of a migrated template database on the test PostgreSQL server. */
function postgresTemplate(adminUrl: string): Promise<string> {
  pgTemplatePromise ??= (async () => {
    const name = `proxy_tpl_${await migrationsKey()}`;
    // One connection (max: 1), so the session-level advisory lock and the statements share a session.
    const admin = openPostgres({ url: adminUrl, max: 1 });
    try {
      await admin.query(sql`SELECT pg_advisory_lock(727310099)`); // serialise across parallel test workers
      const exists = await admin.query(sql`SELECT 1 FROM pg_database WHERE datname = ${name}`);
      if (exists.length === 0) {
        const building = `${name}_build_${crypto.randomUUID().slice(0, 8)}`;
        await admin.exec(`CREATE DATABASE ${building}`);
        const target = openPostgres({ url: withDatabase(adminUrl, building), max: 1 });
        await migrate(target, await readMigrations(MIGRATIONS));
        await target.close();
        await admin.exec(`ALTER DATABASE ${building} RENAME TO ${name}`);
      }
      await admin.query(sql`SELECT pg_advisory_unlock(727310099)`);
    } finally {
      await admin.close();
    }
    return name;
  })();
  return pgTemplatePromise;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A migrated database for one test; `cleanup` closes (and on PostgreSQL drops) it. */
export async function freshDb(
  backend: Backend,
): Promise<{ db: Db; url: string; cleanup: () => Promise<void> }> {
  if (backend === "pglite") {
    const db = await openPglite({ loadDataDir: await pgliteTemplate() });
    return { db, url: "", cleanup: () => db.close() };
  }
  const adminUrl = Deno.env.get("PROXY_TEST_DATABASE_URL")!;
  const template = await postgresTemplate(adminUrl);
  const name = `proxy_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = openPostgres({ url: adminUrl, max: 1 });
  await createFromTemplate(admin, name, template);
  const url = withDatabase(adminUrl, name);
  const db = openPostgres({ url, max: 5 });
  return {
    db,
    url,
    cleanup: async () => {
      await db.close();
      await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await admin.close();
    },
  };
}

async function createFromTemplate(admin: Db, name: string, template: string): Promise<void> {
  // Two workers cloning the same template at once fail with "source database is being accessed": retry.
  for (let attempt = 0;; attempt++) {
    try {
      await admin.exec(`CREATE DATABASE ${name} TEMPLATE ${template}`);
      return;
    } catch (e) {
      if (attempt >= 50 || !/being accessed/.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
}

/** Runs `fn` on a fresh database of `backend`, dropped afterwards whatever `fn` does. */
async function withFreshDb(
  backend: Backend,
  fn: (db: Db, ctx: { backend: Backend; url: string }) => Promise<void>,
): Promise<void> {
  const { db, url, cleanup } = await freshDb(backend);
  try {
    await fn(db, { backend, url });
  } finally {
    await cleanup();
  }
}

/**
 * Registers `fn` as one test per backend, named "<name> [pglite]" / "<name> [postgres]", with a fresh database.
 */
export function dbTest(
  name: string,
  fn: (db: Db, ctx: { backend: Backend; url: string }) => Promise<void>,
): void {
  for (const backend of backends()) {
    Deno.test({
      name: `${name} [${backend}]`,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => withFreshDb(backend, fn),
    });
  }
}

/**
 * Registers `fn` as a test on a fresh PostgreSQL database only (what a server process, a role or a connection
 * does), shown as ignored when `PROXY_TEST_DATABASE_URL` is not set.
 */
export function postgresTest(name: string, fn: (db: Db, ctx: { url: string }) => Promise<void>): void {
  Deno.test({
    name,
    ignore: !backends().includes("postgres"),
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => withFreshDb("postgres", fn),
  });
}

/** `db` with some of its methods replaced (a database that stalls, slows or fails); the rest go to `db`. */
export function wrapDb(db: Db, replaced: Partial<Pick<Db, "query" | "begin" | "ping" | "recycle">>): Db {
  return {
    kind: db.kind,
    get closed() {
      return db.closed;
    },
    query: (f) => db.query(f),
    begin: (fn) => db.begin(fn),
    exec: (t) => db.exec(t),
    listen: db.listen.bind(db),
    ping: () => db.ping(),
    recycle: () => db.recycle(),
    close: () => db.close(),
    ...replaced,
  };
}

/** Wraps `db` so queries and transactions fail while `down` is set, as with a database that went away. */
export function flakyDb(db: Db): Db & { down: boolean } {
  const wrapper = {
    down: false,
    kind: db.kind,
    get closed() {
      return db.closed;
    },
    query: (f: Parameters<Db["query"]>[0]) =>
      wrapper.down ? Promise.reject(new Error("connection refused")) : db.query(f),
    begin: <T>(fn: (tx: Queryable) => Promise<T>) =>
      wrapper.down ? Promise.reject(new Error("connection refused")) : db.begin(fn),
    exec: (t: string) => db.exec(t),
    listen: db.listen.bind(db),
    ping: () => (wrapper.down ? Promise.reject(new Error("down")) : db.ping()),
    recycle: () => db.recycle(),
    close: () => db.close(),
  };
  return wrapper as Db & { down: boolean };
}
