/**
 * The application's own database role (`PROXY_DB_APP_USER`): `migrate`, run as the owner, creates it with row
 * access only, and the proxy then runs as it, end to end. PostgreSQL only (the embedded database has one user).
 */
import assert from "node:assert/strict";
import { backends, freshDb } from "./helpers/db.ts";
import { apiClient, spawnProxy } from "./helpers/process.ts";
import { waitFor } from "./helpers/proxy.ts";
import { startFakeAnthropic } from "./fakes/fake_anthropic.ts";
import { ensureAppRole } from "../lib/db/app_role.ts";
import { migrate, MigrationError, readMigrations } from "../lib/db/migrate.ts";
import { openPostgres } from "../lib/db/postgres.ts";
import { sql } from "../lib/db/sql.ts";
import { insertUser } from "../lib/db/users.ts";
import { insertAuditEvent } from "../lib/db/audit.ts";
import { scramVerifier } from "../lib/crypto/scram_verifier.ts";
import { hashPassword } from "../lib/auth/password.ts";
import type { Db } from "../lib/db/db.ts";

const MIGRATIONS = new URL("../migrations/", import.meta.url);
const onPostgres = { ignore: !backends().includes("postgres"), sanitizeResources: false, sanitizeOps: false };

/** A role name of this test's own: roles are shared by every database of the server. */
function roleName(): string {
  return `proxy_app_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
}

function asRole(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

/** A migrated database with an application role, opened both ways; cleanup drops both. */
async function withAppRole(
  fn: (o: { owner: Db; app: Db; url: string; user: string; password: string }) => Promise<void>,
): Promise<void> {
  const { db: owner, url, cleanup } = await freshDb("postgres");
  const user = roleName();
  const password = "app-role-password-0123456789";
  let app: Db | null = null;
  try {
    assert.equal(await ensureAppRole(owner, { user, password }), "created");
    app = openPostgres({ url: asRole(url, user, password), max: 2 });
    await fn({ owner, app, url, user, password });
  } finally {
    await app?.close();
    await cleanup();
    const admin = openPostgres({ url: Deno.env.get("PROXY_TEST_DATABASE_URL")!, max: 1 });
    await admin.exec(`DROP ROLE IF EXISTS ${user}`).catch(() => {});
    await admin.close();
  }
}

/** The SQLSTATE a statement fails with, or null when it succeeds. */
async function failure(db: Db, text: string): Promise<string | null> {
  try {
    await db.exec(text);
    return null;
  } catch (e) {
    return String((e as { code?: unknown }).code);
  }
}

Deno.test({
  name:
    "the application role reads and writes rows, but cannot change the schema, the audit log or the history",
  ...onPostgres,
}, async () => {
  await withAppRole(async ({ app, user }) => {
    const created = await insertUser(app, {
      email: "role@example.com",
      name: null,
      monthlyBudgetUsd: null,
      routingStrategy: "plan_first",
    });
    await app.query(sql`UPDATE users SET name = 'Role' WHERE id = ${created.id}`);
    await insertAuditEvent(app, {
      actor: "admin",
      action: "user.create",
      targetType: "user",
      targetId: created.id,
      clientAddress: null,
    });
    const [{ n }] = await app.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM audit_events`);
    assert.equal(n, 1, "audit events are appended and read");
    await app.query(sql`DELETE FROM revoked_sessions WHERE expires_at < now()`);

    const denied = "42501"; // insufficient_privilege
    assert.equal(await failure(app, "CREATE TABLE intruder (id int)"), denied, "no new tables");
    assert.equal(await failure(app, "DROP TABLE token_usages"), denied, "no dropped tables");
    assert.equal(await failure(app, "ALTER TABLE users ADD COLUMN x int"), denied, "no altered tables");
    assert.equal(
      await failure(app, "UPDATE audit_events SET actor = 'someone else'"),
      denied,
      "audit: no edits",
    );
    assert.equal(await failure(app, "DELETE FROM audit_events"), denied, "audit: no deletions");
    assert.equal(
      await failure(app, "INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'x', 'x')"),
      denied,
      "the migration history is read only",
    );
    assert.equal(await failure(app, `CREATE ROLE ${user}_2`), denied, "no roles");
  });
});

Deno.test({
  name:
    "the app starts as the application role on an up-to-date database, and a pending migration names who applies it",
  ...onPostgres,
}, async () => {
  await withAppRole(async ({ app }) => {
    const files = await readMigrations(MIGRATIONS);
    assert.deepEqual(await migrate(app, files), { applied: [] }, "nothing pending: checked without DDL");
    const pending = {
      version: files.length + 1,
      name: "later_release",
      sql: "CREATE TABLE later_release (id int)",
      checksum: "0".repeat(64),
    };
    await assert.rejects(
      () => migrate(app, [...files, pending]),
      (e: Error) => {
        assert.ok(e instanceof MigrationError);
        const file = `${String(files.length + 1).padStart(4, "0")}_later_release.sql`;
        assert.ok(e.message.includes(`may not apply migration ${file}`), e.message);
        assert.match(e.message, /database owner to run `deno task migrate`/);
        return true;
      },
    );
  });
});

Deno.test({
  name: "run again, migrate updates the role (its password set anew) and grants a table added since",
  ...onPostgres,
}, async () => {
  await withAppRole(async ({ owner, app, user }) => {
    await owner.exec("CREATE TABLE added_later (id int)");
    assert.equal(await failure(app, "INSERT INTO added_later VALUES (1)"), "42501", "not granted yet");
    assert.equal(await ensureAppRole(owner, { user, password: "a-new-password-0123456789" }), "updated");
    assert.equal(
      await failure(app, "INSERT INTO added_later VALUES (1)"),
      null,
      "granted on the next migrate",
    );
  });
});

/**
 * A database owned by a role with CREATEROLE but no superuser rights, as RDS's master user is, migrated; `user`
 * (the app role the test makes) is dropped before that owner.
 */
async function withRdsLikeOwner(user: string, fn: (owner: () => Db) => Promise<void>): Promise<void> {
  const adminUrl = Deno.env.get("PROXY_TEST_DATABASE_URL")!;
  const admin = openPostgres({ url: adminUrl, max: 1 });
  const ownerName = `${user}_owner`;
  const dbName = `proxy_rds_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const opened: Db[] = [];
  try {
    await admin.exec(`CREATE ROLE ${ownerName} LOGIN CREATEROLE`);
    await admin.exec(`CREATE DATABASE ${dbName} OWNER ${ownerName}`);
    const u = new URL(adminUrl);
    u.username = ownerName;
    u.pathname = `/${dbName}`;
    const owner = () => {
      const db = openPostgres({ url: u.toString(), max: 2 });
      opened.push(db);
      return db;
    };
    await migrate(owner(), await readMigrations(MIGRATIONS));
    await fn(owner);
  } finally {
    for (const db of opened) await db.close().catch(() => {});
    await admin.exec(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.exec(`DROP ROLE IF EXISTS ${user}`).catch(() => {});
    await admin.exec(`DROP ROLE IF EXISTS ${ownerName}`).catch(() => {});
    await admin.close();
  }
}

Deno.test({
  name: "an owner that is not a superuser (as on RDS) sets the role up on every run, not only the first",
  ...onPostgres,
}, async () => {
  const user = roleName();
  await withRdsLikeOwner(user, async (owner) => {
    const db = owner();
    assert.equal(await ensureAppRole(db, { user, password: "first-password-0123456789" }), "created");
    assert.equal(await ensureAppRole(db, { user, password: "second-password-0123456789" }), "updated");
    assert.equal(await ensureAppRole(db, { user, password: "second-password-0123456789" }), "updated");
  });
});

Deno.test({
  name: "two tasks setting the role up at once both succeed (the migration lock orders them)",
  ...onPostgres,
}, async () => {
  const user = roleName();
  await withRdsLikeOwner(user, async (owner) => {
    const [a, b] = [owner(), owner()];
    for (let round = 0; round < 5; round++) {
      const outcomes = await Promise.all([
        ensureAppRole(a, { user, password: "concurrent-password-0123" }),
        ensureAppRole(b, { user, password: "concurrent-password-0123" }),
      ]);
      assert.deepEqual(
        [...outcomes].sort(),
        round === 0 ? ["created", "updated"] : ["updated", "updated"],
        `round ${round}`,
      );
    }
  });
});

Deno.test({
  name: "reserved role names are refused before any statement runs",
  ...onPostgres,
}, async () => {
  const { db, cleanup } = await freshDb("postgres");
  try {
    for (const user of ["current_user", "user", "public", "pg_monitor", "Proxy"]) {
      await assert.rejects(
        () => ensureAppRole(db, { user, password: "x-password-0123456789" }),
        /is not valid; expected lowercase letters, digits and _, not a reserved name/,
        user,
      );
    }
  } finally {
    await cleanup();
  }
});

Deno.test({
  name: "the role's password is sent as the SCRAM verifier PostgreSQL itself computes, never as text",
  ...onPostgres,
}, async () => {
  const admin = openPostgres({ url: Deno.env.get("PROXY_TEST_DATABASE_URL")!, max: 1 });
  const user = roleName();
  const password = "verifier-check-password-42";
  try {
    // The server's own verifier for the password (its random salt), then ours with that salt: they must match.
    await admin.exec(`SET password_encryption = 'scram-sha-256'; CREATE ROLE ${user} PASSWORD '${password}'`);
    const [{ stored }] = await admin.query<{ stored: string }>(
      sql`SELECT rolpassword AS stored FROM pg_authid WHERE rolname = ${user}`,
    );
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored)!;
    const ours = await scramVerifier(password, {
      salt: Uint8Array.from(atob(salt), (c) => c.charCodeAt(0)),
      iterations: Number(iterations),
    });
    assert.equal(ours, stored);
    await assert.rejects(() => scramVerifier("pässword"), /printable ASCII/);
  } finally {
    await admin.exec(`DROP ROLE IF EXISTS ${user}`).catch(() => {});
    await admin.close();
  }
});

Deno.test({
  name:
    "`main.ts migrate` with PROXY_DB_APP_USER sets up the role, and the proxy then serves and records as it",
  ...onPostgres,
}, async () => {
  const { db, url, cleanup } = await freshDb("postgres");
  await db.close();
  const user = roleName();
  const password = "end-to-end-app-password-0123";
  const upstream = await startFakeAnthropic();
  const adminPassword = "app role admin password";
  const common = {
    PROXY_ENV: "development",
    PROXY_KEY_HASHER_SECRET: "app-role-hasher-secret-0123456789abcdef",
    PROXY_JWT_SECRET: "app-role-jwt-secret-0123456789abcdef012345",
    PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
    PROXY_ADMIN_PASSWORD_HASH: await hashPassword(adminPassword, 1000),
    PROXY_PLAN_API_URL: upstream.url,
    PROXY_LOG_LEVEL: "warn",
  };
  let proxy: Awaited<ReturnType<typeof spawnProxy>> | null = null;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "migrate"],
      env: {
        ...common,
        PROXY_DATA_DIR: await Deno.makeTempDir({ prefix: "proxy-migrate-" }),
        PROXY_DATABASE_URL: url,
        PROXY_DB_APP_USER: user,
        PROXY_DB_APP_PASSWORD: password,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const printed = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, printed);
    assert.match(printed, new RegExp(`application role ${user}: created`));
    assert.ok(!printed.includes(password), "the role's password is never printed");

    proxy = await spawnProxy({ ...common, PROXY_DATABASE_URL: asRole(url, user, password) });
    const api = await apiClient(proxy.origin, adminPassword);
    const created = await api("POST", "/users", { email: "app-role@example.com" });
    const key = await api("POST", `/users/${created.id}/access-keys`, {});
    const res = await fetch(`${proxy.origin}/ak/${key.key}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": "k", "content-type": "application/json" },
      body: JSON.stringify({ model: "claude-sonnet-4-5-20250929", max_tokens: 8, messages: [] }),
    });
    await res.text();
    assert.equal(res.status, 200);
    await waitFor(
      async () => (await api("GET", "/usage/requests?limit=5")).total === 1,
      5_000,
      "the usage row, written as the application role",
    );
    await api("DELETE", `/access-keys/${key.id}`);
    const audit = await api("GET", "/audit?limit=10");
    assert.ok(audit.items.length >= 3, "admin actions audited as the application role");
  } finally {
    await proxy?.stop();
    await upstream.close();
    await cleanup();
    const admin = openPostgres({ url: Deno.env.get("PROXY_TEST_DATABASE_URL")!, max: 1 });
    await admin.exec(`DROP ROLE IF EXISTS ${user}`).catch(() => {});
    await admin.close();
  }
});
