/**
 * Admin sessions end when they are signed out (on every replica and across restarts) and when the admin
 * password changes, although their tokens are stateless JWTs.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { makeTestApp } from "./helpers/app.ts";
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
