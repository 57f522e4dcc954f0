/**
 * Admin sessions end when they are signed out (on every replica and across restarts), when the admin
 * password changes and when the admin is renamed, although their tokens are stateless JWTs.
 */
import assert from "node:assert/strict";
import { dbTest, flakyDb } from "./helpers/db.ts";
import { ADMIN_PASSWORD, makeTestApp } from "./helpers/app.ts";
import { makeConsoleApp, text } from "./helpers/console.ts";
import { SESSION_COOKIE } from "../routes/admin/mod.tsx";
import type { Db } from "../lib/db/db.ts";
import { createSessions } from "../lib/auth/session.ts";
import { createSessionRevocations } from "../lib/auth/revocations.ts";
import { createEventBus } from "../lib/events.ts";

const SECRET = "test-jwt-secret-0123456789abcdef0123456789";

dbTest("API sign-out refuses the token from then on; another session is unaffected", async (db) => {
  const t = await makeTestApp(db);
  const login = async () =>
    (await t.call("POST", "/api/auth/login", { username: "admin", password: "correct horse battery staple" }))
      .body.access_token as string;
  const [a, b] = [await login(), await login()];
  const as = (token: string) => ({ authorization: `Bearer ${token}` });
  assert.equal((await t.call("GET", "/api/users", undefined, as(a))).status, 200);
  assert.equal((await t.call("POST", "/api/auth/logout", undefined, as(a))).status, 204);
  const after = await t.call("GET", "/api/users", undefined, as(a));
  assert.equal(after.status, 401);
  assert.equal(after.body.error.type, "authentication_error");
  assert.equal((await t.call("GET", "/api/users", undefined, as(b))).status, 200, "only that session ended");
  assert.equal((await t.call("POST", "/api/auth/logout")).status, 401, "sign-out needs a session");
});

dbTest("a signed-out session stays refused after a restart and on another replica", async (db) => {
  const busA = createEventBus();
  const busB = createEventBus();
  busA.attachTransport((e) => busB.deliverRemote(e)); // what LISTEN/NOTIFY carries between replicas
  const replica = (bus: ReturnType<typeof createEventBus>) => {
    const revocations = createSessionRevocations({ db, bus });
    return { revocations, sessions: createSessions({ secret: SECRET, ttlSeconds: 60, revocations }) };
  };
  const a = replica(busA);
  const b = replica(busB);
  const { token } = await a.sessions.issue("admin");
  const session = (await b.sessions.verify(token))!;
  assert.ok(session);
  await a.sessions.revoke(session);
  assert.equal(await a.sessions.verify(token), null);
  assert.equal(await b.sessions.verify(token), null, "the other replica heard of it");

  const restarted = replica(createEventBus());
  assert.ok(await restarted.sessions.verify(token), "not loaded yet");
  await restarted.revocations.load();
  assert.equal(await restarted.sessions.verify(token), null, "read back from the database");
});

Deno.test("a token issued under another admin password is refused", async () => {
  const before = createSessions({ secret: SECRET, ttlSeconds: 60, passwordHash: "pbkdf2-sha256$1$old" });
  const after = createSessions({ secret: SECRET, ttlSeconds: 60, passwordHash: "pbkdf2-sha256$1$new" });
  const { token } = await before.issue("admin");
  assert.ok(await before.verify(token));
  assert.equal(await after.verify(token), null);
  assert.ok(await after.verify((await after.issue("admin")).token));
});

Deno.test("a token issued to another admin user name is refused", async () => {
  const before = createSessions({ secret: SECRET, ttlSeconds: 60, username: "admin" });
  const after = createSessions({ secret: SECRET, ttlSeconds: 60, username: "root" });
  const { token } = await before.issue("admin");
  assert.ok(await before.verify(token));
  assert.equal(await after.verify(token), null);
  assert.equal((await after.verify((await after.issue("root")).token))?.username, "root");
  assert.equal(await after.verify((await after.issue("Root")).token), null, "the name is compared exactly");
});

dbTest(
  "after a restart with another PROXY_ADMIN_USERNAME and the same password, the old name's sessions are refused",
  async (db) => {
    const old = await makeConsoleApp(db);
    await old.signIn();
    const cookie = old.cookies.get(SESSION_COOKIE)!;
    const bearer = await old.t.auth();
    assert.equal((await old.t.call("GET", "/api/users", undefined, bearer)).status, 200);

    const renamed = await makeConsoleApp(db, { PROXY_ADMIN_USERNAME: "root" });
    const api = await renamed.t.call("GET", "/api/users", undefined, bearer);
    assert.equal(api.status, 401);
    assert.equal(api.body.error.type, "authentication_error");
    renamed.cookies.set(SESSION_COOKIE, cookie);
    const page = await renamed.get("/admin/users");
    assert.equal(page.status, 303);
    assert.match(page.location!, /^\/admin\/login\?next=%2Fadmin%2Fusers&ok=expired$/);
    // The new name signs in as usual, with the same password.
    const signedIn = await renamed.t.call("POST", "/api/auth/login", {
      username: "root",
      password: ADMIN_PASSWORD,
    });
    assert.equal(signedIn.status, 200);
    const fresh = { authorization: `Bearer ${signedIn.body.access_token}` };
    assert.equal((await renamed.t.call("GET", "/api/users", undefined, fresh)).status, 200);
  },
);

dbTest(
  "sign-out with the database down: refused here at once, the cookie cleared, and the admin told",
  async (db) => {
    const flaky = flakyDb(db);
    const c = await makeConsoleApp(flaky);
    await c.signIn();
    const cookie = c.cookies.get(SESSION_COOKIE)!;
    assert.ok(cookie);
    await c.get("/admin/users"); // a page with the session's CSRF token on it
    flaky.down = true;
    const out = await c.post("/admin/logout", {});
    assert.equal(out.status, 303);
    assert.match(out.location!, /ok=signed_out_unstored/);
    assert.equal(c.cookies.has(SESSION_COOKIE), false, "the browser forgets the session");
    const notice = await c.get(out.location!);
    assert.match(text(notice.html), /sign-out is not stored yet/);
    const copy = await c.t.app.request("http://console.test/admin/users", {
      headers: { cookie: `${SESSION_COOKIE}=${cookie}` },
    });
    assert.equal(copy.status, 303, "a copy of the cookie is refused on this replica");
    await copy.body?.cancel();
    assert.ok(c.t.logs.some((l) => l.includes("sign-out not stored")));

    flaky.down = false;
    const token = (await c.t.call("POST", "/api/auth/login", { username: "admin", password: ADMIN_PASSWORD }))
      .body
      .access_token as string;
    flaky.down = true;
    const api = await c.t.call("POST", "/api/auth/logout", undefined, { authorization: `Bearer ${token}` });
    assert.equal(api.status, 202, "accepted, nothing to retry");
    assert.equal(api.body.status, "pending");
    assert.equal(
      (await c.t.call("GET", "/api/users", undefined, { authorization: `Bearer ${token}` })).status,
      401,
    );

    // The database is back (the broadcast connection's resync reloads the list): both sign-outs are stored, so
    // a replica started now refuses both tokens.
    flaky.down = false;
    assert.equal(c.t.services.revocations.unstored, 2);
    await c.t.services.revocations.load();
    assert.equal(c.t.services.revocations.unstored, 0);
    const fresh = createSessionRevocations({ db, bus: createEventBus() });
    await fresh.load();
    assert.equal(fresh.size, 2, "both stored");
  },
);

Deno.test("the revocation list drops entries once their tokens have expired", async () => {
  let t = 1_000_000;
  const bus = createEventBus();
  const published: string[] = [];
  bus.attachTransport((e) => e.type === "session_revoked" && published.push(e.sid));
  const down = { query: () => Promise.reject(new Error("connection refused")) } as unknown as Db;
  const list = createSessionRevocations({ db: down, bus, now: () => t });
  await assert.rejects(list.revoke("a", new Date(t + 1000)));
  assert.ok(list.has("a"), "refused here although the store failed");
  assert.deepEqual(published, ["a"], "and broadcast");
  t += 2000;
  await list.revoke("b", new Date(t + 1000)).catch(() => {});
  assert.equal(list.size, 1, "a's token expired: its entry went");
});
