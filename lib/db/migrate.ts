/**
 * Migration runner: `migrations/NNNN_name.sql` applied in order, one transaction each, recorded in
 * `schema_migrations(version, name, checksum, applied_at)`.
 *
 * Replicas starting together are safe: every step takes a transaction-level advisory lock and re-checks what is
 * applied under it, so each migration runs exactly once. An applied file whose checksum changed, or a gap in the
 * numbering, stops start-up with an error that says what to do.
 *
 * A database that is up to date is checked without any DDL, so the app can start as a role that may only read
 * and write rows (see `app_role.ts`); such a role meeting a pending migration is told who must apply it.
 *
 * @example
 * ```ts
 * const files = await readMigrations(new URL("../../migrations/", import.meta.url));
 * const { applied } = await migrate(db, files);
 * ```
 */
import type { Db } from "./db.ts";
import { sql } from "./sql.ts";
import { toHex } from "../encoding.ts";

/** One migration file, parsed. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** Thrown when the migration files or the recorded history are inconsistent. */
export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationError";
  }
}

/** Arbitrary constant: the advisory lock id every replica contends for while migrating. */
export const MIGRATION_LOCK_ID = 727_310_001;
const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** Reads and checks the migration files of a directory: names, order, no gaps, no duplicates. */
export async function readMigrations(dir: URL | string): Promise<Migration[]> {
  const base = typeof dir === "string" ? dir : dir.pathname;
  const found: Migration[] = [];
  for await (const entry of Deno.readDir(base)) {
    if (!entry.isFile || !entry.name.endsWith(".sql")) continue;
    const m = FILE_PATTERN.exec(entry.name);
    if (!m) {
      throw new MigrationError(
        `migration file "${entry.name}" is misnamed; expected NNNN_lowercase_name.sql, e.g. 0002_add_budgets.sql`,
      );
    }
    const text = await Deno.readTextFile(`${base.replace(/\/$/, "")}/${entry.name}`);
    found.push({ version: Number(m[1]), name: m[2], sql: text, checksum: await checksum(text) });
  }
  return checkSequence(found);
}

/** Sorts migrations and refuses duplicates and gaps (a gap usually means a file was lost in a merge). */
export function checkSequence(migrations: Migration[]): Migration[] {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  sorted.forEach((m, i) => {
    if (m.version !== i + 1) {
      const expected = i + 1;
      throw new MigrationError(
        m.version === sorted[i - 1]?.version
          ? `two migration files share version ${pad(m.version)}; expected one file per version`
          : `migration numbering has a gap: found ${pad(m.version)} where ${pad(expected)} was expected`,
      );
    }
  });
  return sorted;
}

/** SHA-256 hex of a migration's text. */
export async function checksum(text: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

/** Applies pending migrations; returns the versions this call applied (empty when up to date). */
export async function migrate(db: Db, migrations: Migration[]): Promise<{ applied: number[] }> {
  const [{ exists }] = await db.query<{ exists: boolean }>(
    sql`SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`,
  );
  if (!exists) {
    await db.begin(async (tx) => {
      await tx.query(sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`);
      try {
        await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      } catch (e) {
        throw notAllowed(e, "create the migrations table of an empty database") ?? e;
      }
    });
  }

  const recorded = await db.query<{ version: number; name: string; checksum: string }>(
    sql`SELECT version, name, checksum FROM schema_migrations ORDER BY version`,
  );
  verifyHistory(recorded, migrations);

  const applied: number[] = [];
  const done = new Set(recorded.map((r) => r.version));
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    const ran = await db.begin(async (tx) => {
      await tx.query(sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`);
      const already = await tx.query<{ checksum: string }>(
        sql`SELECT checksum FROM schema_migrations WHERE version = ${m.version}`,
      );
      if (already.length > 0) return false; // another replica applied it while we waited for the lock
      try {
        await tx.exec(m.sql);
      } catch (e) {
        const denied = notAllowed(e, `apply migration ${pad(m.version)}_${m.name}.sql`);
        if (denied) throw denied;
        throw new MigrationError(
          `migration ${pad(m.version)}_${m.name}.sql failed and was rolled back: ${(e as Error).message}`,
        );
      }
      await tx.query(
        sql`INSERT INTO schema_migrations (version, name, checksum) VALUES (${m.version}, ${m.name}, ${m.checksum})`,
      );
      return true;
    });
    if (ran) applied.push(m.version);
  }
  return { applied };
}

/**
 * The migrations `migrate` would apply, found without changing anything (no DDL, no lock): for a command that
 * writes rows and leaves the schema to `migrate`. An applied file that was edited since is refused, as `migrate`
 * refuses it.
 */
export async function pendingMigrations(db: Db, migrations: Migration[]): Promise<Migration[]> {
  const [{ exists }] = await db.query<{ exists: boolean }>(
    sql`SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`,
  );
  if (!exists) return migrations;
  const recorded = await db.query<{ version: number; name: string; checksum: string }>(
    sql`SELECT version, name, checksum FROM schema_migrations ORDER BY version`,
  );
  verifyHistory(recorded, migrations);
  const done = new Set(recorded.map((r) => r.version));
  return migrations.filter((m) => !done.has(m.version));
}

function verifyHistory(
  recorded: Array<{ version: number; name: string; checksum: string }>,
  migrations: Migration[],
): void {
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  for (const r of recorded) {
    const file = byVersion.get(r.version);
    if (!file) continue; // applied by a newer release during a rolling deploy: harmless for this one
    if (file.checksum !== r.checksum) {
      throw new MigrationError(
        `migration ${pad(r.version)}_${file.name}.sql was changed after it was applied (checksum ${
          r.checksum.slice(0, 12)
        }… in the database, ${
          file.checksum.slice(0, 12)
        }… on disk); applied migrations must not be edited: restore the file and add a new migration instead`,
      );
    }
  }
}

/**
 * The error for a role that may not change the schema (SQLSTATE 42501), saying who can; null for any other
 * error. In AWS the task's migrate container applies migrations as the owner before the app starts.
 */
function notAllowed(e: unknown, what: string): MigrationError | null {
  const code = (e as { code?: unknown })?.code;
  if (code !== "42501") return null;
  return new MigrationError(
    `this database user may not ${what} (${(e as Error).message}); expected the database owner to run ` +
      "`deno task migrate` (main.ts migrate) first: the application role may only read and write rows",
  );
}

function pad(n: number): string {
  return String(n).padStart(4, "0");
}
