/**
 * The JSON admin API through `app.request()`, on both database backends: sign-in, users, access keys, rotation,
 * Bedrock credentials, audit, and every error.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { ADMIN_PASSWORD, makeTestApp } from "./helpers/app.ts";
import { sql } from "../lib/db/sql.ts";
import type { Db } from "../lib/db/db.ts";
import { createSessions } from "../lib/auth/session.ts";
import { FAKE_KMS_CREDENTIALS, FAKE_KMS_DEFAULT_KEY_ID, startFakeKms } from "./fakes/fake_kms.ts";

/** How many audit rows there are: a change refused or with nothing to change writes none. */
async function auditRows(db: Db): Promise<number> {
  return (await db.query(sql`SELECT id FROM audit_events`)).length;
}

dbTest("login issues a bearer token; wrong user and wrong password get the same 401", async (db) => {
  const t = await makeTestApp(db);
  const ok = await t.call("POST", "/api/auth/login", { username: "admin", password: ADMIN_PASSWORD });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.token_type, "bearer");
  assert.equal(ok.body.expires_in, 12 * 3600);
  assert.match(ok.body.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

  const wrongPassword = await t.call("POST", "/api/auth/login", { username: "admin", password: "nope" });
  const wrongUser = await t.call("POST", "/api/auth/login", { username: "root", password: ADMIN_PASSWORD });
  assert.equal(wrongPassword.status, 401);
  assert.deepEqual(wrongPassword.body, wrongUser.body);
  assert.deepEqual(wrongPassword.body, {
    error: { type: "authentication_error", message: "wrong user name or password" },
  });
  // A malformed call is told what is wrong with it, not that the password was wrong.
  for (const body of [{ username: 1, password: 2 }, {}, { username: "admin", password: "" }]) {
    const bad = await t.call("POST", "/api/auth/login", body);
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.match(bad.body.error.message, /^(username|password): expected a non-empty string$/);
  }
});

dbTest("an empty PATCH changes nothing: same user, same update time, no audit row", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  const user = (await t.call("POST", "/api/users", { email: "same@example.com", name: "Same" }, h)).body;
  const before = await auditRows(db);
  const res = await t.call("PATCH", `/api/users/${user.id}`, {}, h);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, user);
  assert.equal(await auditRows(db), before);
});

dbTest("paging parameters are plain digits: exponents, hex and spaces are refused", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  for (const limit of ["1e2", "0x10", "%205", "2.0", "-1"]) {
    const res = await t.call("GET", `/api/users?limit=${limit}`, undefined, h);
    assert.equal(res.status, 400, limit);
    assert.match(res.body.error.message, /^limit: expected an integer between 1 and 200$/);
  }
  assert.equal((await t.call("GET", "/api/users?limit=5&offset=0", undefined, h)).status, 200);
});

dbTest("failed logins are throttled per address and per user name with retry-after", async (db) => {
  const t = await makeTestApp(db, { PROXY_TRUST_FORWARDED_FOR: "true" });
  const from = (ip: string) => ({ "x-forwarded-for": ip });
  for (let i = 0; i < 5; i++) {
    const r = await t.call(
      "POST",
      "/api/auth/login",
      { username: "admin", password: "bad" },
      from("10.0.0.1"),
    );
    assert.equal(r.status, 401);
  }
  const blocked = await t.call(
    "POST",
    "/api/auth/login",
    { username: "admin", password: ADMIN_PASSWORD },
    from("10.0.0.1"),
  );
  assert.equal(blocked.status, 429);
  assert.equal(blocked.body.error.type, "rate_limit_error");
  assert.ok(Number(blocked.headers.get("retry-after")) > 0);
  // The user name is throttled too: an address that has failed once gets no second try while the name is
  // under attack, so guessing from many addresses gains one try per address.
  const once = await t.call(
    "POST",
    "/api/auth/login",
    { username: "admin", password: "bad" },
    from("10.0.0.2"),
  );
  assert.equal(once.status, 401);
  const otherIp = await t.call(
    "POST",
    "/api/auth/login",
    { username: "admin", password: ADMIN_PASSWORD },
    from("10.0.0.2"),
  );
  assert.equal(otherIp.status, 429);
  // The admin, from an address that has not failed, still signs in: others' guesses cannot lock them out.
  const admin = await t.call(
    "POST",
    "/api/auth/login",
    { username: "admin", password: ADMIN_PASSWORD },
    from("10.0.0.9"),
  );
  assert.equal(admin.status, 200);
  // Another name from another address is unaffected.
  const other = await t.call(
    "POST",
    "/api/auth/login",
    { username: "someone", password: "x" },
    from("10.0.0.3"),
  );
  assert.equal(other.status, 401);
});

dbTest(
  "a sign-in with a user name over 256 characters is 400 naming the field, and counts as no failure",
  async (db) => {
    const t = await makeTestApp(db, { PROXY_TRUST_FORWARDED_FOR: "true" });
    const from = { "x-forwarded-for": "10.0.0.5" };
    const longest = await t.call(
      "POST",
      "/api/auth/login",
      { username: "a".repeat(256), password: "x" },
      from,
    );
    assert.equal(longest.status, 401, "256 characters is still a name to check");
    for (const length of [257, 1_000_000]) {
      const res = await t.call(
        "POST",
        "/api/auth/login",
        { username: "a".repeat(length), password: "x" },
        from,
      );
      assert.equal(res.status, 400, `${length} characters`);
      assert.deepEqual(res.body.error, {
        type: "invalid_request_error",
        message: `username: expected at most 256 characters, got ${length}`,
        field: "username",
      });
    }
    // Many more than the limit of five failures: none was recorded, so the address is not throttled.
    for (let i = 0; i < 8; i++) {
      const res = await t.call(
        "POST",
        "/api/auth/login",
        { username: `${i}`.repeat(300), password: "x" },
        from,
      );
      assert.equal(res.status, 400);
    }
    const admin = await t.call(
      "POST",
      "/api/auth/login",
      { username: "admin", password: ADMIN_PASSWORD },
      from,
    );
    assert.equal(admin.status, 200);
  },
);

dbTest("every API route but login needs a valid, unexpired session", async (db) => {
  const t = await makeTestApp(db);
  const missing = await t.call("GET", "/api/users");
  assert.equal(missing.status, 401);
  assert.equal(missing.body.error.type, "authentication_error");
  const forged = await t.call("GET", "/api/users", undefined, { authorization: "Bearer a.b.c" });
  assert.equal(forged.status, 401);
  const otherSecret = await createSessions({ secret: "another-secret-entirely-0123456789", ttlSeconds: 60 })
    .issue("admin");
  assert.equal(
    (await t.call("GET", "/api/users", undefined, { authorization: `Bearer ${otherSecret.token}` })).status,
    401,
  );
  const expired = await createSessions({
    secret: t.config.jwtSecret,
    ttlSeconds: 60,
    now: () => new Date(Date.now() - 3600_000),
  }).issue("admin");
  assert.equal(
    (await t.call("GET", "/api/users", undefined, { authorization: `Bearer ${expired.token}` })).status,
    401,
  );
  assert.equal((await t.call("GET", "/api/users", undefined, await t.auth())).status, 200);
});

dbTest("users: create, list with search and paging, get, patch, soft delete", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  const created = await t.call("POST", "/api/users", {
    email: "Dev@Example.com",
    name: "Dev One",
    monthly_budget_usd: 50,
    routing_strategy: "bedrock_only",
  }, h);
  assert.equal(created.status, 201);
  assert.equal(created.body.email, "dev@example.com");
  assert.equal(created.body.monthly_budget_usd, 50);
  assert.equal(created.body.routing_strategy, "bedrock_only");
  assert.equal(created.body.is_active, true);
  const id = created.body.id;
  for (let i = 0; i < 3; i++) {
    assert.equal((await t.call("POST", "/api/users", { email: `user${i}@example.com` }, h)).status, 201);
  }

  const all = await t.call("GET", "/api/users?limit=2&offset=0", undefined, h);
  assert.equal(all.body.total, 4);
  assert.equal(all.body.items.length, 2);
  const page2 = await t.call("GET", "/api/users?limit=2&offset=2", undefined, h);
  assert.equal(page2.body.items.length, 2);
  const searched = await t.call("GET", "/api/users?q=dev%20one", undefined, h);
  assert.deepEqual(searched.body.items.map((u: { id: string }) => u.id), [id]);
  assert.equal(
    (await t.call("GET", "/api/users?q=%25", undefined, h)).body.total,
    0,
    "LIKE wildcards are literal",
  );

  const got = await t.call("GET", `/api/users/${id}`, undefined, h);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body.access_keys, []);

  const patched = await t.call("PATCH", `/api/users/${id}`, {
    name: "Renamed",
    monthly_budget_usd: null,
    routing_strategy: "plan_first",
    is_active: false,
  }, h);
  assert.equal(patched.status, 200);
  assert.equal(patched.body.name, "Renamed");
  assert.equal(patched.body.monthly_budget_usd, null);
  assert.equal(patched.body.is_active, false);

  assert.equal((await t.call("DELETE", `/api/users/${id}`, undefined, h)).status, 204);
  assert.equal((await t.call("GET", `/api/users/${id}`, undefined, h)).status, 404);
  assert.equal((await t.call("GET", "/api/users", undefined, h)).body.total, 3);
  const [row] = await db.query<{ deleted_at: Date | null }>(
    sql`SELECT deleted_at FROM users WHERE id = ${id}`,
  );
  assert.ok(row.deleted_at instanceof Date, "soft delete keeps the row");
  // The email can be used again once its user is deleted.
  assert.equal((await t.call("POST", "/api/users", { email: "dev@example.com" }, h)).status, 201);
});

dbTest(
  "user input errors: duplicate 409, invalid fields 400 naming the field, unknown id 404",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    await t.call("POST", "/api/users", { email: "a@example.com" }, h);
    const dup = await t.call("POST", "/api/users", { email: "A@example.com" }, h);
    assert.equal(dup.status, 409);
    assert.equal(dup.body.error.type, "conflict_error");
    const cases: Array<[unknown, string]> = [
      [{ email: "not-an-email" }, "email"],
      [{ email: "b@example.com", monthly_budget_usd: -1 }, "monthly_budget_usd"],
      [{ email: "b@example.com", routing_strategy: "cheapest" }, "routing_strategy"],
      [{ email: "b@example.com", extra: 1 }, ""],
      [{}, "email"],
    ];
    for (const [body, field] of cases) {
      const r = await t.call("POST", "/api/users", body, h);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.type, "invalid_request_error");
      if (field) {
        assert.equal(r.body.error.field, field);
        assert.match(r.body.error.message, new RegExp(`^${field}: `));
      } else assert.match(r.body.error.message, /unknown field "extra"/);
    }
    const missing = await t.call("POST", "/api/users", {}, h);
    assert.match(missing.body.error.message, /^email: missing; expected an email address/);
    const malformed = await t.call("POST", "/api/users", "{bad json", h);
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.error.message, /not valid JSON/);
    const huge = await t.call(
      "POST",
      "/api/users",
      JSON.stringify({ email: "x@example.com", name: "x".repeat(1_100_000) }),
      h,
    );
    assert.equal(huge.status, 413);
    assert.equal(
      (await t.call("GET", "/api/users/00000000-0000-0000-0000-000000000000", undefined, h)).status,
      404,
    );
    assert.equal((await t.call("GET", "/api/users/not-a-uuid", undefined, h)).status, 404);
    assert.equal(
      (await t.call("PATCH", "/api/users/00000000-0000-0000-0000-000000000000", {}, h)).status,
      404,
    );
    assert.equal((await t.call("GET", "/api/users?limit=0", undefined, h)).status, 400);
  },
);

dbTest(
  "access keys: issued once, stored only as HMAC, listed, revoked; lookup follows at once",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "k@example.com" }, h)).body;
    const issued = await t.call("POST", `/api/users/${user.id}/access-keys`, { name: "laptop" }, h);
    assert.equal(issued.status, 201);
    assert.equal(issued.headers.get("cache-control"), "no-store");
    const { id, key, key_prefix } = issued.body;
    assert.match(key, /^ak_[A-Za-z0-9_-]{43}$/);
    assert.equal(key.startsWith(key_prefix), true);
    assert.ok(issued.body.created_at);

    // The raw key is nowhere in the database: not in any column of any table.
    const dump = JSON.stringify(await db.query(sql`SELECT * FROM access_keys`)) +
      JSON.stringify(await db.query(sql`SELECT * FROM audit_events`));
    assert.ok(!dump.includes(key));
    assert.ok(!dump.includes(key.slice(8)));
    const [stored] = await db.query<{ key_hash: string }>(
      sql`SELECT key_hash FROM access_keys WHERE id = ${id}`,
    );
    assert.match(stored.key_hash, /^[0-9a-f]{64}$/);

    const list = await t.call("GET", `/api/users/${user.id}/access-keys`, undefined, h);
    assert.equal(list.body.items.length, 1);
    const [view] = list.body.items;
    assert.deepEqual(
      [view.key_prefix, view.name, view.status, view.has_bedrock_credentials, view.last_used_at],
      [key_prefix, "laptop", "active", false, null],
    );
    assert.equal("key" in view, false);

    assert.equal((await t.services.resolver.resolve(key)).status, "ok");
    const revoked = await t.call("DELETE", `/api/access-keys/${id}`, undefined, h);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.body.status, "revoked");
    assert.equal(
      (await t.services.resolver.resolve(key)).status,
      "revoked",
      "revocation invalidates the cache at once",
    );
    // Again: answered as done, the first revocation's time kept, and no second audit row.
    const again = await t.call("DELETE", `/api/access-keys/${id}`, undefined, h);
    assert.equal(again.status, 200);
    assert.ok(revoked.body.revoked_at);
    assert.equal(again.body.revoked_at, revoked.body.revoked_at);
    const audited = await db.query<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM audit_events WHERE action = 'access_key.revoke' AND target_id = ${id}`,
    );
    assert.equal(audited[0].n, 1);
    assert.equal(
      (await t.call("DELETE", "/api/access-keys/00000000-0000-0000-0000-000000000000", undefined, h)).status,
      404,
    );
    assert.equal(
      (await t.call("POST", `/api/users/00000000-0000-0000-0000-000000000000/access-keys`, {}, h)).status,
      404,
    );
    // Nothing logged holds the raw key.
    assert.ok(!t.logs.join("\n").includes(key));
  },
);

dbTest("deleting or deactivating a user stops its keys at once", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  const user = (await t.call("POST", "/api/users", { email: "d@example.com" }, h)).body;
  const { key } = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
  assert.equal((await t.services.resolver.resolve(key)).status, "ok");
  await t.call("PATCH", `/api/users/${user.id}`, { is_active: false }, h);
  assert.equal((await t.services.resolver.resolve(key)).status, "user_inactive");
  await t.call("PATCH", `/api/users/${user.id}`, { is_active: true }, h);
  assert.equal((await t.services.resolver.resolve(key)).status, "ok");
  await t.call("DELETE", `/api/users/${user.id}`, undefined, h);
  // Revoked with its user; the holder is told the user is gone (403), which says more than "revoked".
  assert.equal((await t.services.resolver.resolve(key)).status, "user_inactive");
  const row = await db.query<{ revoked: boolean }>(
    sql`SELECT revoked_at IS NOT NULL AS revoked FROM access_keys WHERE user_id = ${user.id}`,
  );
  assert.deepEqual(
    row.map((r) => r.revoked),
    [true],
    "and the key itself is revoked, should the user come back",
  );
});

dbTest(
  "a PATCH holding text that cannot be stored is a 400 naming the field, and changes nothing",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "half@example.com", name: "before" }, h)).body;
    const before = await auditRows(db);
    // JSON.stringify escapes a lone surrogate as \ud800, as a script's JSON encoder does.
    const res = await t.call(
      "PATCH",
      `/api/users/${user.id}`,
      { name: "after\ud800", monthly_budget_usd: 5 },
      h,
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error.type, "invalid_request_error");
    assert.match(res.body.error.message, /^name: holds an unpaired UTF-16 surrogate/);
    const after = (await t.call("GET", `/api/users/${user.id}`, undefined, h)).body;
    assert.deepEqual([after.name, after.monthly_budget_usd], ["before", null], "nothing half-applied");
    assert.equal(await auditRows(db), before);
  },
);

dbTest(
  "keys issued while their user is being deleted are refused or revoked with it, never left active",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "race@example.com" }, h)).body;
    const issue = () => t.call("POST", `/api/users/${user.id}/access-keys`, {}, h);
    const answers = await Promise.all([
      ...Array.from({ length: 8 }, issue),
      t.call("DELETE", `/api/users/${user.id}`, undefined, h),
      ...Array.from({ length: 8 }, issue),
    ]);
    assert.equal(answers[8].status, 204);
    for (const a of answers.filter((_, i) => i !== 8)) {
      assert.ok(
        [201, 404].includes(a.status),
        String(a.status),
      );
    }
    const rows = await db.query<{ revoked: boolean }>(
      sql`SELECT revoked_at IS NOT NULL AS revoked FROM access_keys WHERE user_id = ${user.id}`,
    );
    assert.equal(rows.length, answers.filter((a) => a.status === 201).length);
    assert.deepEqual(rows.filter((r) => !r.revoked), [], "no key of a deleted user stays active");
  },
);

dbTest(
  "rotation returns a new key once; the old one works until the grace ends; credentials carry over",
  async (db) => {
    let now = new Date("2026-06-01T00:00:00Z");
    const t = await makeTestApp(db, {}, { now: () => now });
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "r@example.com" }, h)).body;
    const old = (await t.call("POST", `/api/users/${user.id}/access-keys`, { name: "ci" }, h)).body;
    await t.call("PUT", `/api/access-keys/${old.id}/bedrock-key`, {
      bedrock_api_key: "ABSKexampleexample1234",
      region: "us-west-2",
    }, h);
    const rotated = await t.call("POST", `/api/access-keys/${old.id}/rotate`, { grace_seconds: 60 }, h);
    assert.equal(rotated.status, 201);
    assert.notEqual(rotated.body.key, old.key);
    assert.equal(rotated.body.name, "ci");
    assert.equal(rotated.body.has_bedrock_credentials, true);
    const carried = await t.services.credentials.load(rotated.body.id);
    assert.deepEqual(carried, {
      credentials: { kind: "api_key", apiKey: "ABSKexampleexample1234" },
      region: "us-west-2",
    });

    assert.equal((await t.services.resolver.resolve(old.key)).status, "ok", "inside the grace period");
    assert.equal((await t.call("GET", `/api/access-keys/${old.id}`, undefined, h)).body.status, "rotating");
    now = new Date(now.getTime() + 61_000);
    assert.equal((await t.services.resolver.resolve(old.key)).status, "expired", "refused after the grace");
    assert.equal((await t.services.resolver.resolve(rotated.body.key)).status, "ok");
    const again = await t.call("POST", `/api/access-keys/${old.id}/rotate`, {}, h);
    assert.equal(again.status, 409);
    const bad = await t.call("POST", `/api/access-keys/${rotated.body.id}/rotate`, { grace_seconds: -1 }, h);
    assert.equal(bad.status, 400);
  },
);

dbTest(
  "rotating a key that is already rotating is refused with 409 naming its replacement; nothing changes",
  async (db) => {
    const now = new Date("2026-06-01T00:00:00Z");
    const t = await makeTestApp(db, {}, { now: () => now });
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "rr@example.com" }, h)).body;
    const old = (await t.call("POST", `/api/users/${user.id}/access-keys`, { name: "ci" }, h)).body;
    const first = await t.call("POST", `/api/access-keys/${old.id}/rotate`, { grace_seconds: 600 }, h);
    assert.equal(first.status, 201);
    const stored = (await t.call("GET", `/api/access-keys/${old.id}`, undefined, h)).body;
    assert.equal(
      first.body.previous_key.expires_at,
      stored.expires_at,
      "the response reports the stored expiry",
    );

    const second = await t.call("POST", `/api/access-keys/${old.id}/rotate`, { grace_seconds: 60 }, h);
    assert.equal(second.status, 409);
    assert.equal(second.body.error.type, "conflict_error");
    assert.match(second.body.error.message, new RegExp(`already rotating.*rotate ${first.body.id} instead`));
    assert.match(second.body.error.message, /or revoke/);

    const after = (await t.call("GET", `/api/access-keys/${old.id}`, undefined, h)).body;
    assert.deepEqual([after.rotated_to, after.expires_at], [first.body.id, stored.expires_at]);
    const keys = (await t.call("GET", `/api/users/${user.id}/access-keys`, undefined, h)).body.items;
    assert.equal(keys.length, 2, "no second replacement was issued");
    // The replacement itself can be rotated.
    assert.equal((await t.call("POST", `/api/access-keys/${first.body.id}/rotate`, {}, h)).status, 201);
  },
);

dbTest("two concurrent rotations of one key leave exactly one replacement", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  const user = (await t.call("POST", "/api/users", { email: "rc@example.com" }, h)).body;
  const old = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
  await t.call(
    "PUT",
    `/api/access-keys/${old.id}/bedrock-key`,
    { bedrock_api_key: "ABSKexampleexample1234" },
    h,
  );
  const results = await Promise.all(
    [1, 2, 3].map(() => t.call("POST", `/api/access-keys/${old.id}/rotate`, {}, h)),
  );
  assert.deepEqual(results.map((r) => r.status).sort(), [201, 409, 409]);
  const winner = results.find((r) => r.status === 201)!.body;
  const keys = (await t.call("GET", `/api/users/${user.id}/access-keys`, undefined, h)).body.items;
  assert.deepEqual(keys.map((k: { id: string }) => k.id).sort(), [old.id, winner.id].sort());
  assert.equal((await t.call("GET", `/api/access-keys/${old.id}`, undefined, h)).body.rotated_to, winner.id);
  const [{ n }] = await db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM bedrock_keys`);
  assert.equal(n, 2, "the losers' re-sealed credentials are gone with their keys");
});

dbTest(
  "NUL characters in a string field or search parameter are refused with 400 naming the field",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "nul@example.com" }, h)).body;
    const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    const cases: Array<[string, string, unknown, string]> = [
      ["POST", "/api/users", { email: "a\u0000b@x.io" }, "email"],
      ["POST", "/api/users", { email: "c@x.io", name: "Dev\u0000" }, "name"],
      ["PATCH", `/api/users/${user.id}`, { name: "\u0000" }, "name"],
      ["POST", `/api/users/${user.id}/access-keys`, { name: "lap\u0000top" }, "name"],
      [
        "PUT",
        `/api/access-keys/${key.id}/bedrock-key`,
        { bedrock_api_key: "ABSKexample\u0000example1234" },
        "bedrock_api_key",
      ],
      ["GET", "/api/users?q=%00", undefined, "q"],
      ["GET", "/api/users?q=a%00b", undefined, "q"],
    ];
    for (const [method, path, body, field] of cases) {
      const r = await t.call(method, path, body, h);
      assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.type, "invalid_request_error");
      assert.equal(r.body.error.field, field);
      assert.match(r.body.error.message, new RegExp(`^${field}: .*NUL`));
    }
    const login = await t.call("POST", "/api/auth/login", { username: "ad\u0000min", password: "x" });
    assert.ok(login.status < 500, `login with NUL: ${login.status}`);
  },
);

dbTest("a body nested 200,000 deep is refused in linear time, without stalling the server", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  const depth = 200_000;
  const body = `{"email":"deep@example.com","name":${"[".repeat(depth)}"x\\u0000"${"]".repeat(depth)}}`;
  const started = performance.now();
  const r = await t.call("POST", "/api/users", body, h);
  const ms = performance.now() - started;
  assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
  assert.equal(r.body.error.field, `name${".0".repeat(depth)}`);
  assert.match(r.body.error.message, /NUL/);
  // Copying the path at every level took 14 s at 60,000 deep (quadratic); this depth took minutes.
  assert.ok(ms < 10_000, `took ${Math.round(ms)} ms`);
});

dbTest(
  "Bedrock credentials are refused on a revoked or expired key; a rotating key still takes them",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "creds@example.com" }, h)).body;
    const creds = { bedrock_api_key: "ABSKexampleexampleexample1234" };
    const revoked = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    await t.call("DELETE", `/api/access-keys/${revoked.id}`, undefined, h);
    const refused = await t.call("PUT", `/api/access-keys/${revoked.id}/bedrock-key`, creds, h);
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, /is revoked; Bedrock credentials can be set only on a live key/);

    const old = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    const rotated = (await t.call("POST", `/api/access-keys/${old.id}/rotate`, { grace_seconds: 0 }, h)).body;
    const expired = await t.call("PUT", `/api/access-keys/${old.id}/bedrock-key`, creds, h);
    assert.equal(expired.status, 409);
    assert.match(expired.body.error.message, /is expired/);
    assert.equal((await t.call("PUT", `/api/access-keys/${rotated.id}/bedrock-key`, creds, h)).status, 200);

    // The user list counts only keys that still work: the revoked and the expired one are not among them.
    const listed = (await t.call("GET", "/api/users?q=creds@", undefined, h)).body;
    assert.equal(listed.items[0].key_count, 1);

    const negative = await t.call("POST", `/api/access-keys/${rotated.id}/rotate`, { grace_seconds: -1 }, h);
    assert.equal(negative.status, 400);
    assert.match(negative.body.error.message, /^grace_seconds: must not be negative/);
  },
);

dbTest("budgets with fractions of a cent or beyond numeric(12,2) are refused, not rounded", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  for (const budget of [0.004, 12.345, 1e-7]) {
    const r = await t.call("POST", "/api/users", { email: "b1@example.com", monthly_budget_usd: budget }, h);
    assert.equal(r.status, 400, String(budget));
    assert.equal(r.body.error.field, "monthly_budget_usd");
    assert.match(r.body.error.message, /^monthly_budget_usd: .*cent/);
  }
  const huge = await t.call("POST", "/api/users", { email: "b1@example.com", monthly_budget_usd: 1e10 }, h);
  assert.equal(huge.status, 400);
  assert.equal(huge.body.error.field, "monthly_budget_usd");
  const user = (await t.call("POST", "/api/users", { email: "b1@example.com", monthly_budget_usd: 0.29 }, h))
    .body;
  assert.equal(user.monthly_budget_usd, 0.29, "two decimal places are kept exactly");
  const patch = await t.call("PATCH", `/api/users/${user.id}`, { monthly_budget_usd: 12.345 }, h);
  assert.equal(patch.status, 400);
  assert.equal(patch.body.error.field, "monthly_budget_usd");
  const patched = await t.call("PATCH", `/api/users/${user.id}`, { monthly_budget_usd: 9999999.99 }, h);
  assert.equal(patched.body.monthly_budget_usd, 9999999.99);
});

dbTest("the login answer holding a bearer token is never cached", async (db) => {
  const t = await makeTestApp(db);
  const ok = await t.call("POST", "/api/auth/login", { username: "admin", password: ADMIN_PASSWORD });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("cache-control"), "no-store");
  assert.equal(ok.headers.get("pragma"), "no-cache");
});

dbTest("no API answer is cached or sniffed: data, errors and usage alike", async (db) => {
  const t = await makeTestApp(db);
  const auth = await t.auth();
  // The last is an error echoing its input.
  for (const path of ["/api/users", "/api/audit", "/api/usage/requests", "/api/access-keys/<script>"]) {
    const res = await t.call("GET", path, undefined, auth);
    assert.equal(res.headers.get("cache-control"), "no-store", path);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
  }
  const refused = await t.call("GET", "/api/users");
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("cache-control"), "no-store");
  assert.equal(refused.headers.get("x-content-type-options"), "nosniff");
});

dbTest(
  "Bedrock credentials: put IAM or API key, get shows only kind, region and tail, delete",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "b@example.com" }, h)).body;
    const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    const path = `/api/access-keys/${key.id}/bedrock-key`;
    assert.equal((await t.call("GET", path, undefined, h)).status, 404);
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const put = await t.call("PUT", path, {
      aws_access_key_id: "AKIAIOSFODNN7EXAMPLE",
      aws_secret_access_key: secret,
      aws_session_token: "session-token-value",
      region: "us-east-1",
    }, h);
    assert.equal(put.status, 200);
    assert.deepEqual([put.body.kind, put.body.region, put.body.key_tail], ["iam", "us-east-1", "…MPLE"]);
    const got = await t.call("GET", path, undefined, h);
    const text = JSON.stringify(got.body);
    assert.ok(
      !text.includes(secret) && !text.includes("AKIAIOSFODNN7EXAMPLE") &&
        !text.includes("session-token-value"),
    );
    const [row] = await db.query<Record<string, unknown>>(sql`SELECT * FROM bedrock_keys`);
    const rowText = JSON.stringify(row) + new TextDecoder().decode(row.encrypted_secret_key as Uint8Array);
    assert.ok(!rowText.includes(secret) && !rowText.includes("AKIAIOSFODNN7EXAMPLE"), "stored encrypted");
    assert.equal(
      (await t.call("GET", `/api/users/${user.id}/access-keys`, undefined, h)).body.items[0]
        .has_bedrock_credentials,
      true,
    );
    assert.deepEqual(await t.services.credentials.load(key.id), {
      credentials: {
        kind: "iam",
        accessKeyId: "AKIAIOSFODNN7EXAMPLE",
        secretAccessKey: secret,
        sessionToken: "session-token-value",
      },
      region: "us-east-1",
    });

    const replaced = await t.call("PUT", path, { bedrock_api_key: "ABSKQmVkcm9ja0FQSUtleQ1234" }, h);
    assert.deepEqual([replaced.body.kind, replaced.body.region, replaced.body.key_tail], [
      "api_key",
      null,
      "…1234",
    ]);
    assert.equal(
      (await t.services.credentials.load(key.id))?.credentials.kind,
      "api_key",
      "cache invalidated on replace",
    );

    const invalid = await t.call(
      "PUT",
      path,
      { aws_access_key_id: "nope", aws_secret_access_key: "short" },
      h,
    );
    assert.equal(invalid.status, 400);
    assert.match(invalid.body.error.message, /aws_access_key_id/);
    const neither = await t.call("PUT", path, { region: "us-east-1" }, h);
    assert.equal(neither.status, 400);
    const empty = await t.call("PUT", path, {}, h);
    assert.equal(empty.status, 400);
    assert.equal(
      empty.body.error.message,
      "expected either aws_access_key_id + aws_secret_access_key, or bedrock_api_key",
      "nothing given: the union's own message, not one branch's first missing field",
    );
    const halfIam = await t.call("PUT", path, { aws_access_key_id: "AKIAIOSFODNN7EXAMPLE" }, h);
    assert.match(halfIam.body.error.message, /^aws_secret_access_key: /, "the branch the input started");
    const badRegion = await t.call("PUT", path, {
      bedrock_api_key: "ABSKQmVkcm9ja0FQSUtleQ1234",
      region: "mars",
    }, h);
    assert.equal(badRegion.status, 400);
    assert.equal(badRegion.body.error.field, "region");
    // Too long is said so, with the limit (it was "expected a string").
    for (
      const [body, pattern] of [
        [
          { aws_access_key_id: "AKIAIOSFODNN7EXAMPLE", aws_secret_access_key: "s".repeat(306) },
          /^aws_secret_access_key: too long .*256/,
        ],
        [
          {
            aws_access_key_id: "AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key: "s".repeat(40),
            aws_session_token: "t".repeat(5000),
          },
          /^aws_session_token: too long .*4096/,
        ],
        [{ bedrock_api_key: "ABSK" + "k".repeat(5000) }, /^bedrock_api_key: too long .*4096/],
      ] as const
    ) {
      const long = await t.call("PUT", path, body, h);
      assert.equal(long.status, 400);
      assert.match(long.body.error.message, pattern);
    }

    assert.equal((await t.call("DELETE", path, undefined, h)).status, 204);
    assert.equal((await t.call("DELETE", path, undefined, h)).status, 404);
    assert.equal(await t.services.credentials.load(key.id), null);
    assert.ok(!t.logs.join("\n").includes(secret));
  },
);

dbTest("a credential ciphertext moved to another key's row fails to decrypt", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  const user = (await t.call("POST", "/api/users", { email: "m@example.com" }, h)).body;
  const a = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
  const b = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
  await t.call(
    "PUT",
    `/api/access-keys/${a.id}/bedrock-key`,
    { bedrock_api_key: "ABSKaaaaaaaaaaaaaaaa1111" },
    h,
  );
  await t.call(
    "PUT",
    `/api/access-keys/${b.id}/bedrock-key`,
    { bedrock_api_key: "ABSKbbbbbbbbbbbbbbbb2222" },
    h,
  );
  await db.query(sql`UPDATE bedrock_keys SET encrypted_secret_key = src.encrypted_secret_key,
    encryption_iv = src.encryption_iv FROM bedrock_keys src WHERE src.access_key_id = ${a.id}
    AND bedrock_keys.access_key_id = ${b.id}`);
  t.services.credentials.forget(b.id);
  await assert.rejects(() => t.services.credentials.load(b.id), /authentication|decrypt/i);
});

dbTest("every mutating call is audited with actor, action, target and address", async (db) => {
  const t = await makeTestApp(db, { PROXY_TRUST_FORWARDED_FOR: "true" });
  const h = { ...(await t.auth()), "x-forwarded-for": "203.0.113.9" };
  const user = (await t.call("POST", "/api/users", { email: "audit@example.com" }, h)).body;
  const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
  await t.call("PUT", `/api/access-keys/${key.id}/bedrock-key`, {
    bedrock_api_key: "ABSKcccccccccccccccc3333",
  }, h);
  await t.call("DELETE", `/api/access-keys/${key.id}/bedrock-key`, undefined, h);
  await t.call("PATCH", `/api/users/${user.id}`, { name: "x" }, h);
  await t.call("DELETE", `/api/access-keys/${key.id}`, undefined, h);
  await t.call("DELETE", `/api/users/${user.id}`, undefined, h);
  const audit = await t.call("GET", "/api/audit?limit=100", undefined, h);
  assert.equal(audit.status, 200);
  const actions = audit.body.items.map((e: { action: string }) => e.action).reverse();
  assert.deepEqual(actions, [
    "user.create",
    "access_key.create",
    "bedrock_key.put",
    "bedrock_key.delete",
    "user.update",
    "access_key.revoke",
    "user.delete",
  ]);
  for (const e of audit.body.items) {
    assert.equal(e.actor, "admin");
    assert.equal(e.client_address, "203.0.113.9");
    assert.ok(e.target_id);
  }
  assert.ok(!JSON.stringify(audit.body).includes(key.key));
});

dbTest("audit details are stored and returned as the JSON object that was recorded", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  const user = (await t.call("POST", "/api/users", { email: "details@example.com" }, h)).body;
  const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
  await t.call("PUT", `/api/access-keys/${key.id}/bedrock-key`, {
    aws_access_key_id: "AKIAIOSFODNN7EXAMPLE",
    aws_secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    region: "us-east-1",
  }, h);
  const audit = await t.call("GET", "/api/audit", undefined, h);
  const details = Object.fromEntries(
    audit.body.items.map((e: { action: string; details: unknown }) => [e.action, e.details]),
  );
  assert.deepEqual(details, {
    "bedrock_key.put": { kind: "iam", region: "us-east-1" },
    "access_key.create": { key_prefix: key.key_prefix, user_id: user.id },
    "user.create": { email: "details@example.com" },
  });
  const stored = await db.query<{ type: string }>(
    sql`SELECT DISTINCT jsonb_typeof(details) AS type FROM audit_events`,
  );
  assert.deepEqual(
    Array.from(stored, (r) => r.type),
    ["object"],
    "stored as a jsonb object, queryable by key",
  );
});

dbTest("audit rows stored as JSON text by earlier versions are returned as their object", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  // What insertAuditEvent used to store on PostgreSQL: a jsonb string holding the object's JSON text.
  await db.query(sql`INSERT INTO audit_events (actor, action, target_type, target_id, details)
    VALUES ('admin', 'bedrock_key.put', 'access_key', 'k1', to_jsonb(${'{"kind":"iam","region":"us-east-1"}'}::text)),
      ('admin', 'odd.event', null, null, to_jsonb('not json'::text))`);
  const audit = await t.call("GET", "/api/audit", undefined, h);
  assert.deepEqual(audit.body.items.map((e: { details: unknown }) => e.details), [
    { text: "not json" },
    { kind: "iam", region: "us-east-1" },
  ]);
});

dbTest(
  "Bedrock credentials with both IAM keys and bedrock_api_key are refused as exclusive before any field check",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "both@example.com" }, h)).body;
    const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    const path = `/api/access-keys/${key.id}/bedrock-key`;
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const expected = (sent: string) =>
      `${sent} and bedrock_api_key sent together: Bedrock credentials are one kind or the other; send either ` +
      "aws_access_key_id + aws_secret_access_key (and aws_session_token for temporary keys) or bedrock_api_key " +
      "alone, with region optional for either";
    for (
      const [body, sent] of [
        // A short API key beside IAM keys: once answered "bedrock_api_key: too short for a Bedrock API key".
        [{ aws_access_key_id: "AKIAIOSFODNN7EXAMPLE", bedrock_api_key: "short" }, "aws_access_key_id"],
        [
          {
            aws_access_key_id: "AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key: secret,
            bedrock_api_key: "short",
          },
          "aws_access_key_id, aws_secret_access_key",
        ],
        [
          {
            aws_access_key_id: "AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key: secret,
            aws_session_token: "session-token-value",
            bedrock_api_key: "ABSKQmVkcm9ja0FQSUtleQ1234",
            region: "us-east-1",
          },
          "aws_access_key_id, aws_secret_access_key, aws_session_token",
        ],
        [
          { aws_secret_access_key: "short", bedrock_api_key: "ABSKQmVkcm9ja0FQSUtleQ1234" },
          "aws_secret_access_key",
        ],
      ] as const
    ) {
      const res = await t.call("PUT", path, body, h);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.deepEqual(res.body, { error: { type: "invalid_request_error", message: expected(sent) } });
      assert.ok(!JSON.stringify(res.body).includes(secret));
    }
    assert.equal((await t.call("GET", path, undefined, h)).status, 404, "nothing stored");

    // A field sent as null is not sent: the API key alone is then judged on its own.
    const nulls = await t.call("PUT", path, {
      aws_access_key_id: null,
      bedrock_api_key: "short",
    }, h);
    assert.equal(nulls.status, 400);
    assert.doesNotMatch(nulls.body.error.message, /sent together/);
  },
);

dbTest("KMS mode: credentials are sealed with a KMS data key through the real AWS SDK", async (db) => {
  const kms = await startFakeKms();
  try {
    const t = await makeTestApp(db, {
      PROXY_KMS_KEY_ID: FAKE_KMS_DEFAULT_KEY_ID,
      PROXY_KMS_ENDPOINT: kms.url,
      PROXY_BEDROCK_REGION: "us-east-1",
    }, { kmsCredentials: FAKE_KMS_CREDENTIALS });
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "kms@example.com" }, h)).body;
    const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    const put = await t.call("PUT", `/api/access-keys/${key.id}/bedrock-key`, {
      bedrock_api_key: "ABSKkmskmskmskmskms9999",
    }, h);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.encryption, "kms-aes-256-gcm");
    const [row] = await db.query<{ encrypted_data_key: Uint8Array | null; kms_key_id: string | null }>(
      sql`SELECT encrypted_data_key, kms_key_id FROM bedrock_keys`,
    );
    assert.ok(row.encrypted_data_key && row.encrypted_data_key.length > 0);
    assert.ok(row.kms_key_id);
    t.services.credentials.forget(key.id);
    const loaded = await t.services.credentials.load(key.id);
    assert.deepEqual(loaded?.credentials, { kind: "api_key", apiKey: "ABSKkmskmskmskmskms9999" });
    const targets = kms.calls.map((c) => c.target);
    assert.deepEqual(targets, ["TrentService.GenerateDataKey", "TrentService.Decrypt"]);
    assert.deepEqual((kms.calls[0].body as { EncryptionContext: unknown }).EncryptionContext, {
      access_key_id: key.id,
    });
  } finally {
    await kms.close();
  }
});

dbTest(
  "a path the API has, called with a method it does not take, is 405 naming the ones it does",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const wrong = await t.call("POST", "/api/usage", {}, h);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, HEAD");
    assert.deepEqual(wrong.body, {
      error: {
        type: "invalid_request_error",
        message: "POST is not allowed on /api/usage; expected GET, HEAD",
      },
    });
    const user = await t.call("PUT", "/api/users/00000000-0000-4000-8000-000000000000", { name: "x" }, h);
    assert.equal(user.status, 405);
    assert.equal(user.headers.get("allow"), "DELETE, GET, HEAD, PATCH");
    // Still authentication first: a caller without a session learns nothing about the routes.
    assert.equal((await t.call("POST", "/api/usage", {})).status, 401);
    // A path no route takes stays 404.
    assert.equal((await t.call("GET", "/api/nowhere", undefined, h)).status, 404);
  },
);

dbTest(
  "another site's page cannot sign in or count failures: its posts are refused before the throttle",
  async (db) => {
    const t = await makeTestApp(db, { PROXY_TRUST_FORWARDED_FOR: "true" });
    // What `<form enctype="text/plain">` or `fetch(…, {mode: "no-cors"})` on another site sends: no preflight.
    const post = (headers: Record<string, string>, password = "wrong") =>
      t.app.request("http://proxy.test/api/auth/login", {
        method: "POST",
        headers: { "content-type": "text/plain;charset=UTF-8", "x-forwarded-for": "192.0.2.10", ...headers },
        body: JSON.stringify({ username: "admin", password }),
      });
    const hostile: Array<Record<string, string>> = [
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" }, // a sibling subdomain
      { origin: "https://evil.example" }, // a browser without Fetch Metadata
      { origin: "null" }, // a sandboxed frame
    ];
    for (let i = 0; i < 3; i++) {
      for (const headers of hostile) {
        const res = await post(headers);
        assert.equal(res.status, 403, JSON.stringify(headers));
        const body = await res.json();
        assert.equal(body.error.type, "permission_error");
        assert.match(body.error.message, /another site's page/);
      }
    }
    // Twelve posts later the admin, in the same browser, is not locked out; nor is a page of the proxy itself.
    const own = await post({ origin: "http://proxy.test", "sec-fetch-site": "same-origin" }, ADMIN_PASSWORD);
    assert.equal(own.status, 200);
    assert.equal(
      (await post({ "sec-fetch-site": "none" }, ADMIN_PASSWORD)).status,
      200,
      "typed or bookmarked",
    );
    // Behind a load balancer that ends TLS, the page's https origin matches the host, not the scheme.
    const behindTls = await t.app.request("http://proxy.example.com/api/auth/login", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        host: "proxy.example.com",
        origin: "https://proxy.example.com",
      },
      body: JSON.stringify({ username: "admin", password: ADMIN_PASSWORD }),
    });
    assert.equal(behindTls.status, 200);
    const variants: Array<Record<string, string>> = [
      { host: "Proxy.Example.com:443", origin: "https://proxy.example.com" }, // an explicit default port
      { host: "[::1]:8000", origin: "http://[::1]:8000" },
      { host: "proxy.test", origin: "null", "sec-fetch-site": "same-origin" }, // a no-referrer page of its own
    ];
    for (const headers of variants) {
      const res = await t.app.request("http://proxy.test/api/auth/login", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ username: "admin", password: ADMIN_PASSWORD }),
      });
      assert.equal(res.status, 200, JSON.stringify(headers));
      await res.body?.cancel();
    }
    const otherPort = await post({ origin: "http://proxy.test:8443" });
    assert.equal(otherPort.status, 403, "another port is another origin");
    await otherPort.body?.cancel();
    // curl and scripts send neither header; their wrong passwords still count.
    for (let i = 0; i < 5; i++) assert.equal((await post({})).status, 401);
    assert.equal((await post({}, ADMIN_PASSWORD)).status, 429);
  },
);

dbTest(
  "Bedrock credentials for a rotating key are refused with 409 naming its replacement, which takes them",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "rot-cred@example.com" }, h)).body;
    const old = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    const next = (await t.call("POST", `/api/access-keys/${old.id}/rotate`, { grace_seconds: 60 }, h)).body;
    const credentials = { bedrock_api_key: "ABSKexampleexample1234", region: "us-east-1" };
    const refused = await t.call("PUT", `/api/access-keys/${old.id}/bedrock-key`, credentials, h);
    assert.equal(refused.status, 409);
    assert.match(refused.body.error.message, new RegExp(`rotating.*replacement, access key ${next.id}`));
    assert.equal(
      (await t.call("GET", `/api/access-keys/${old.id}`, undefined, h)).body.has_bedrock_credentials,
      false,
    );
    assert.equal(
      (await t.call("PUT", `/api/access-keys/${next.id}/bedrock-key`, credentials, h)).status,
      200,
    );
    // Removing a secret is always allowed, rotating or not.
    assert.equal(
      (await t.call("DELETE", `/api/access-keys/${next.id}/bedrock-key`, undefined, h)).status,
      204,
    );
  },
);

dbTest(
  "an email written differently (combining accents, full-width letters) finds the same user; invisible characters are refused",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const first = await t.call("POST", "/api/users", { email: "dév@exämple.com", name: "Dév" }, h);
    assert.equal(first.status, 201);
    const decomposed = await t.call("POST", "/api/users", { email: "de\u0301v@exa\u0308mple.com" }, h);
    assert.equal(decomposed.status, 409, JSON.stringify(decomposed.body));
    assert.equal((await t.call("POST", "/api/users", { email: "ascii@example.com" }, h)).status, 201);
    assert.equal((await t.call("POST", "/api/users", { email: "ＡＳＣＩＩ@example.com" }, h)).status, 409);
    const found = await t.call("GET", `/api/users?q=${encodeURIComponent("de\u0301v")}`, undefined, h);
    assert.deepEqual(found.body.items.map((u: { id: string }) => u.id), [first.body.id]);
    assert.equal(first.body.name, "Dév");

    for (
      const [body, field] of [
        [{ email: "dev\u200b@example.com" }, "email"],
        [{ email: "a\u001b[31m@x.io" }, "email"],
        [{ email: "ok@x.io", name: "\u0007\u001b[2J" }, "name"],
        [{ email: "ok@x.io", name: "evil\u202egnp.exe" }, "name"],
      ] as const
    ) {
      const r = await t.call("POST", "/api/users", body, h);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.field, field);
      assert.match(r.body.error.message, /invisible character/);
    }
    // Names keep their letters, and the joiners Persian names and emoji sequences are written with.
    for (
      const name of [
        "Zoë Ångström",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "Ana \u{1F469}\u200d\u{1F4BB}",
      ]
    ) {
      const named = await t.call(
        "POST",
        "/api/users",
        { email: `n${name.length}@x.io`, name: `  ${name}  ` },
        h,
      );
      assert.equal(named.status, 201, name);
      assert.equal(named.body.name, name);
    }
  },
);

dbTest(
  "unknown fields name the first as the field and say what is taken, without echoing them all",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const one = await t.call("POST", "/api/users", { email: "u1@example.com", is_active: false }, h);
    assert.equal(one.status, 400);
    assert.equal(one.body.error.field, "is_active");
    assert.match(one.body.error.message, /unknown field "is_active"; expected only email, name/);
    const many: Record<string, unknown> = { email: "flood@example.com" };
    for (let i = 0; i < 5_000; i++) many[`k${i}${"x".repeat(100)}`] = i;
    const flood = await t.call("POST", "/api/users", many, h);
    assert.equal(flood.status, 400);
    assert.ok(
      JSON.stringify(flood.body).length < 2_000,
      `error of ${JSON.stringify(flood.body).length} bytes`,
    );
    assert.match(flood.body.error.message, /and 4997 more/);
  },
);

dbTest("an id that is not a UUID is a 404 saying ids are UUIDs, with the id cut short", async (db) => {
  const t = await makeTestApp(db);
  const h = await t.auth();
  const long = await t.call("GET", `/api/users/${"a".repeat(10_000)}`, undefined, h);
  assert.equal(long.status, 404);
  assert.match(long.body.error.message, /ids are UUIDs/);
  assert.ok(long.body.error.message.length < 200);
  const key = await t.call("GET", "/api/access-keys/nope", undefined, h);
  assert.equal(key.status, 404);
  assert.match(key.body.error.message, /access key "nope" does not exist: ids are UUIDs/);
});

dbTest(
  "a rotating key whose replacement was revoked is told to get a new key, not sent back to the replacement",
  async (db) => {
    const t = await makeTestApp(db);
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "dead-next@example.com" }, h)).body;
    const old = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    const next = (await t.call("POST", `/api/access-keys/${old.id}/rotate`, { grace_seconds: 600 }, h)).body;
    assert.equal((await t.call("DELETE", `/api/access-keys/${next.id}`, undefined, h)).status, 200);
    const again = await t.call("POST", `/api/access-keys/${old.id}/rotate`, {}, h);
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /replacement .* no longer works; issue a new key for the user/);
    assert.ok(again.body.error.message.includes(`POST /api/users/${user.id}/access-keys`));
    // A malformed body is said to be so, whatever the key's state.
    const bad = await t.call("POST", `/api/access-keys/${old.id}/rotate`, { x: 1 }, h);
    assert.equal(bad.status, 400);
  },
);

dbTest("sign-in called with another method answers 405 naming POST, with or without a token", async (db) => {
  const t = await makeTestApp(db);
  const bare = await t.call("GET", "/api/auth/login");
  assert.equal(bare.status, 405);
  assert.equal(bare.headers.get("allow"), "POST");
});
