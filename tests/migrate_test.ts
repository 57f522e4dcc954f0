import assert from "node:assert/strict";
import {
  checkSequence,
  checksum,
  migrate,
  type Migration,
  MigrationError,
  pendingMigrations,
  readMigrations,
} from "../lib/db/migrate.ts";
import { openPglite } from "../lib/db/pglite.ts";
import { openPostgres } from "../lib/db/postgres.ts";
import { sql } from "../lib/db/sql.ts";
import type { Db } from "../lib/db/db.ts";

const MIGRATIONS = new URL("../migrations/", import.meta.url);
const pgUrl = Deno.env.get("PROXY_TEST_DATABASE_URL");

/** An empty (unmigrated) database per backend. */
async function emptyDbs(): Promise<
  Array<{ name: string; open: () => Db | Promise<Db>; cleanup: () => Promise<void> }>
> {
  const out: Array<{ name: string; open: () => Db | Promise<Db>; cleanup: () => Promise<void> }> = [];
  out.push({ name: "pglite", open: () => openPglite(), cleanup: () => Promise.resolve() });
  if (pgUrl) {
    const dbName = `proxy_m_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const admin = openPostgres({ url: pgUrl, max: 1 });
    await admin.exec(`CREATE DATABASE ${dbName}`);
    const u = new URL(pgUrl);
    u.pathname = `/${dbName}`;
    out.push({
      name: "postgres",
      open: () => openPostgres({ url: u.toString(), max: 4 }),
      cleanup: async () => {
        await admin.exec(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await admin.close();
      },
    });
  }
  return out;
}

const expectedTables = [
  "access_keys",
  "audit_events",
  "bedrock_keys",
  "revoked_sessions",
  "token_usages",
  "usage_aggregates",
  "users",
];

Deno.test({
  name: "migrations apply fresh, re-run idempotently, run once under concurrency, and refuse edited files",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const files = await readMigrations(MIGRATIONS);
    for (const target of await emptyDbs()) {
      await t.step(target.name, async () => {
        const a = await target.open();
        const b = target.name === "pglite" ? a : await target.open();
        try {
          // Two runners at once: each migration applied exactly once between them.
          const [ra, rb] = await Promise.all([migrate(a, files), migrate(b, files)]);
          assert.deepEqual([...ra.applied, ...rb.applied].sort(), files.map((f) => f.version));
          const tables = await a.query<{ table_name: string }>(sql`
            SELECT table_name FROM information_schema.tables
            WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY table_name`);
          assert.deepEqual(tables.map((r) => r.table_name), expectedTables);
          const recorded = await a.query<{ version: number; name: string; checksum: string }>(
            sql`SELECT version, name, checksum FROM schema_migrations ORDER BY version`,
          );
          assert.deepEqual(recorded.map((r) => r.version), files.map((f) => f.version));
          assert.equal(recorded[0].name, "init");
          assert.equal(recorded[0].checksum, files[0].checksum);

          // Idempotent re-run.
          assert.deepEqual((await migrate(a, files)).applied, []);

          // An applied file that changed is refused with a clear message.
          const edited: Migration[] = files.map((f, i) =>
            i === 0 ? { ...f, sql: f.sql + "\n-- edited", checksum: "0".repeat(64) } : f
          );
          await assert.rejects(() => migrate(a, edited), (e: Error) => {
            assert.ok(e instanceof MigrationError);
            assert.match(e.message, /0001_init\.sql was changed after it was applied/);
            return true;
          });

          // A new migration is applied on top; a failing one is rolled back and named.
          const next: Migration = {
            version: files.length + 1,
            name: "add_probe",
            sql: "CREATE TABLE probe (id int);",
            checksum: await checksum("x"),
          };
          assert.deepEqual((await migrate(a, [...files, next])).applied, [next.version]);
          const broken: Migration = {
            version: files.length + 2,
            name: "broken",
            sql: "CREATE TABLE probe2 (id int); SELECT * FROM no_such_table;",
            checksum: await checksum("y"),
          };
          await assert.rejects(
            () => migrate(a, [...files, next, broken]),
            new RegExp(`${String(broken.version).padStart(4, "0")}_broken\\.sql failed and was rolled back`),
          );
          const probe2 = await a.query(sql`SELECT to_regclass('probe2') AS t`);
          assert.equal((probe2[0] as { t: unknown }).t, null, "the failed migration left nothing behind");
        } finally {
          if (b !== a) await b.close();
          await a.close();
          await target.cleanup();
        }
      });
    }
  },
});

Deno.test({
  name: "pending migrations are listed without changing the database; an edited applied file is refused",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const files = await readMigrations(MIGRATIONS);
    for (const target of await emptyDbs()) {
      await t.step(target.name, async () => {
        const db = await target.open();
        try {
          assert.deepEqual(await pendingMigrations(db, files), files, "an empty database lacks them all");
          const [{ exists }] = await db.query<{ exists: boolean }>(
            sql`SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`,
          );
          assert.equal(exists, false, "not even the migrations table was created");
          await migrate(db, files.slice(0, -1));
          assert.deepEqual(await pendingMigrations(db, files), files.slice(-1));
          await migrate(db, files);
          assert.deepEqual(await pendingMigrations(db, files), []);
          const edited = files.map((f, i) => i === 0 ? { ...f, checksum: "0".repeat(64) } : f);
          await assert.rejects(
            () => pendingMigrations(db, edited),
            /0001_init\.sql was changed after it was applied/,
          );
        } finally {
          await db.close();
          await target.cleanup();
        }
      });
    }
  },
});

Deno.test("a gap or a duplicate in migration numbering is refused", () => {
  const m = (version: number): Migration => ({ version, name: `m${version}`, sql: "", checksum: "" });
  assert.throws(() => checkSequence([m(1), m(3)]), /gap: found 0003 where 0002 was expected/);
  assert.throws(() => checkSequence([m(1), m(1)]), /two migration files share version 0001/);
  assert.deepEqual(checkSequence([m(2), m(1)]).map((x) => x.version), [1, 2]);
});

Deno.test("a misnamed migration file is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/0001_init.sql`, "SELECT 1;");
    await Deno.writeTextFile(`${dir}/2_Bad Name.sql`, "SELECT 1;");
    await assert.rejects(() => readMigrations(dir), /misnamed; expected NNNN_lowercase_name\.sql/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
