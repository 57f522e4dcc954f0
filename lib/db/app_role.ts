/**
 * The application's own PostgreSQL role: it may read and write rows, and nothing else. The server that faces the
 * internet then holds no credentials that can change the schema, create roles, rewrite the audit log or read
 * another database; only `main.ts migrate`, run as the database owner before the app starts, holds those.
 *
 * Run after the migrations, on every deploy: it creates the role or sets its password (so the secret it was
 * given stays the one that works), and grants what the current tables need. Granted:
 * - every table: SELECT, INSERT, UPDATE, DELETE, except
 * - `audit_events`: SELECT and INSERT only (the app never changes a past admin action),
 * - `schema_migrations`: SELECT only (the app checks that nothing is pending),
 * - every sequence: USAGE, SELECT.
 *
 * @example
 * ```ts
 * await migrate(db, migrations);
 * const outcome = await ensureAppRole(db, { user: "proxy_app", password }); // "created" | "updated"
 * ```
 */
import type { Db } from "./db.ts";
import { sql } from "./sql.ts";
import { scramVerifier } from "../crypto/scram_verifier.ts";
import { MIGRATION_LOCK_ID } from "./migrate.ts";

/** What {@link ensureAppRole} did to the role itself (privileges are granted either way). */
export type AppRoleOutcome = "created" | "updated";

/**
 * Role names this accepts: what PostgreSQL takes unquoted, so logs and `psql` show it as written; not a
 * reserved one (`pg_*`, `public`, `current_user` and the like, which a GRANT would read as something else).
 */
export const APP_ROLE_NAME =
  /^(?!pg_)(?!(?:public|none|user|current_user|session_user|current_role|all)$)[a-z_][a-z0-9_]{0,62}$/;

/** Tables the app may not change at all, or only append to. */
const READ_ONLY_TABLES = new Set(["schema_migrations"]);
const APPEND_ONLY_TABLES = new Set(["audit_events"]);

/** Creates the app role or resets its password, then grants it row access to the current schema. */
export async function ensureAppRole(
  db: Db,
  role: { user: string; password: string },
): Promise<AppRoleOutcome> {
  if (db.kind !== "postgres") {
    throw new Error("a separate application role needs PostgreSQL; the embedded database has one user");
  }
  if (!APP_ROLE_NAME.test(role.user)) {
    throw new Error(
      `application role name "${role.user}" is not valid; expected lowercase letters, digits and _, not a ` +
        "reserved name, e.g. proxy_app",
    );
  }
  return await db.begin(async (tx) => {
    // The migration lock: two tasks starting together would otherwise both CREATE the role (a duplicate key)
    // or both GRANT at once ("tuple concurrently updated"), failing one task's start.
    await tx.query(sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`);
    const [me] = await tx.query<{ user: string; db: string }>(
      sql`SELECT current_user AS user, current_database() AS db`,
    );
    if (me.user === role.user) {
      throw new Error(
        `the application role must not be the migrating user (${role.user}); expected a role of its own, e.g. proxy_app`,
      );
    }
    const [found] = await tx.query<{ superuser: boolean }>(
      sql`SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = ${role.user}`,
    );
    if (found?.superuser) {
      throw new Error(
        `the application role ${role.user} is a superuser; expected a role of its own with no special rights`,
      );
    }
    const outcome: AppRoleOutcome = found ? "updated" : "created";
    // Utility statements take no bound parameters: the server quotes the name and the verifier (format's %I
    // and %L). The password itself is never sent, so no server log can show it. (No NOSUPERUSER: only a
    // superuser may name that attribute in ALTER ROLE, and an RDS owner is not one; a new role has it anyway.)
    const verifier = await scramVerifier(role.password);
    const statements = await tx.query<{ text: string }>(
      sql`SELECT format(${
        outcome === "created"
          ? "CREATE ROLE %I LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD %L"
          : "ALTER ROLE %I LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD %L"
      }::text, ${role.user}::text, ${verifier}::text) AS text`,
    );
    await tx.exec(statements[0].text);

    const tables = await tx.query<{ name: string }>(
      sql`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
    );
    const grantee = ident(role.user);
    const grants: string[] = [
      `GRANT CONNECT ON DATABASE ${ident(me.db)} TO ${grantee}`,
      `GRANT USAGE ON SCHEMA public TO ${grantee}`,
      `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${grantee}`,
    ];
    for (const { name } of tables) {
      const privileges = READ_ONLY_TABLES.has(name)
        ? "SELECT"
        : APPEND_ONLY_TABLES.has(name)
        ? "SELECT, INSERT"
        : "SELECT, INSERT, UPDATE, DELETE";
      // Revoked first: a table that became append-only in a later release loses what it had.
      grants.push(`REVOKE ALL ON TABLE ${ident(name)} FROM ${grantee}`);
      grants.push(`GRANT ${privileges} ON TABLE ${ident(name)} TO ${grantee}`);
    }
    await tx.exec(grants.join(";\n"));
    return outcome;
  });
}

/** A name from the catalogue, quoted as an identifier. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
